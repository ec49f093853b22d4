"""GET /admin/v1/usage over real HTTP: sums per group, exact money, the window, parameter
errors, and scope (a tenant's callers never see another tenant's usage)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gatewise.identity.roles import Role
from gatewise.store.usage import UsageRecord, UsageRepository
from tests.integration import admin_support as support
from tests.integration.admin_support import Env, Org

template, server, env = support.template, support.server, support.env
pytestmark = pytest.mark.asyncio(loop_scope="module")

URL = "/admin/v1/usage"
DAY = 86400.0
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def call_of(org: Org, n: int, at: float, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "request_id": f"req-{org.tenant}-{n}",
        "at": at,
        "model": "gpt-4o-mini",
        "operation": "chat",
        "status": 200,
        "tenant_id": org.tenant,
        "team_id": org.teams["core"],
        "app_id": org.apps["svc"],
        "key_id": org.keys["svc"],
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "cost_micros": 1_234_567,
    }
    return UsageRecord(**{**values, **fields})


async def seed(env: Env) -> None:
    a, b = env.world.a, env.world.b
    records = [
        call_of(a, 0, T0),
        call_of(a, 1, T0 + 60, model="mock-gpt", cost_micros=None, key_id=a.keys["client"],
                app_id=a.apps["client"]),
        call_of(a, 2, T0 + 120, completion_tokens=0, cost_micros=1),
        call_of(b, 0, T0 + 30, model="mock-gpt", prompt_tokens=7, cost_micros=5_000_000),
        call_of(a, 3, T0 - DAY),  # a day earlier
    ]  # fmt: skip
    await UsageRepository(env.store.database).insert_many(records)


async def get(env: Env, role: Role, **params: Any) -> Any:
    reply = await env.client.call("GET", URL, env.world.key(role), params=params)
    assert reply.status == 200, reply.text
    return reply.json


async def test_platform_admin_sums_every_tenant(env: Env) -> None:
    await seed(env)
    a, b = env.world.a, env.world.b
    body = await get(env, Role.PLATFORM_ADMIN, group_by="tenant", **{"from": T0, "to": T0 + 3600})
    assert (body["group_by"], body["from"], body["to"]) == ("tenant", T0, T0 + 3600)
    groups = {row["group"]: row for row in body["data"]}
    assert set(groups) == {a.tenant, b.tenant}
    assert groups[a.tenant] == {
        "group": a.tenant,
        "requests": 3,
        "refused": 0,
        "prompt_tokens": 300,
        "completion_tokens": 40,
        "total_tokens": 340,
        "cost_usd": "1.234568",
        "cost_unknown_requests": 1,
    }
    assert groups[b.tenant]["cost_usd"] == "5.000000"

    only_b = await get(env, Role.PLATFORM_ADMIN, group_by="model", tenant_id=b.tenant,
                       **{"from": T0, "to": T0 + 3600})  # fmt: skip
    assert [(r["group"], r["requests"], r["prompt_tokens"]) for r in only_b["data"]] == [
        ("mock-gpt", 1, 7)
    ]


async def test_iso_times_and_every_grouping(env: Env) -> None:
    await seed(env)
    a = env.world.a
    window = {"from": "2027-01-15T08:00:00Z", "to": "2027-01-15T09:00:00+00:00"}
    by_model = await get(env, Role.TENANT_ADMIN, group_by="model", **window)
    assert (by_model["from"], by_model["to"]) == (T0, T0 + 3600)
    assert [(r["group"], r["requests"], r["cost_usd"], r["cost_unknown_requests"])
            for r in by_model["data"]] == [
        ("gpt-4o-mini", 2, "1.234568", 0),
        ("mock-gpt", 1, "0.000000", 1),
    ]  # fmt: skip
    by_key = await get(env, Role.TENANT_ADMIN, group_by="key", **window)
    assert {r["group"]: r["requests"] for r in by_key["data"]} == {
        a.keys["svc"]: 2,
        a.keys["client"]: 1,
    }
    by_app = await get(env, Role.VIEWER, group_by="app", **window)
    assert {r["group"] for r in by_app["data"]} == {a.apps["svc"], a.apps["client"]}
    by_team = await get(env, Role.VIEWER, group_by="team", **window)
    assert [(r["group"], r["requests"]) for r in by_team["data"]] == [(a.teams["core"], 3)]
    whole_day = await get(env, Role.VIEWER, **{"from": "2027-01-14", "to": "2027-01-16"})
    assert whole_day["group_by"] == "tenant"  # the default grouping
    assert [(r["group"], r["requests"]) for r in whole_day["data"]] == [(a.tenant, 4)]


@pytest.mark.parametrize("role", [Role.TENANT_ADMIN, Role.VIEWER], ids=lambda r: r.value)
async def test_tenant_callers_never_see_another_tenants_usage(env: Env, role: Role) -> None:
    await seed(env)
    a, b = env.world.a, env.world.b
    window = {"from": T0 - 2 * DAY, "to": T0 + DAY}
    for group_by in ("tenant", "team", "app", "key", "model"):
        reply = await env.client.call(
            "GET", URL, env.world.key(role), params={"group_by": group_by, **window}
        )
        assert reply.status == 200, reply.text
        assert not [i for i in b.ids() if i in reply.text]
        assert sum(r["requests"] for r in reply.json["data"]) == 4  # A's own four calls
    asked_for_b = await get(env, role, group_by="model", tenant_id=b.tenant, **window)
    assert asked_for_b["data"] == []
    own = await get(env, role, group_by="tenant", tenant_id=a.tenant, **window)
    assert [r["group"] for r in own["data"]] == [a.tenant]


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.CONSUMER], ids=lambda r: r.value)
async def test_roles_without_audit_read_are_refused(env: Env, role: Role) -> None:
    reply = await env.client.call("GET", URL, env.world.key(role))
    assert reply.status == 403
    assert reply.error["type"] == "permission_denied" and "audit:read" in reply.error["message"]
    unauthenticated = await env.client.call("GET", URL)
    assert unauthenticated.status == 401


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "colour"}, "group_by"),
        ({"group_by": "tenants"}, "group_by"),
        ({"from": "last tuesday"}, "from"),
        ({"to": "2027-13-01"}, "to"),
        ({"from": "nan"}, "from"),
        ({"from": T0, "to": T0}, "from"),
        ({"from": T0 + 1, "to": T0}, "from"),
        ({"status": "teapot"}, "status"),
        ({"group_by": "statuses"}, "group_by"),
    ],
)
async def test_invalid_parameters_are_400_naming_them(
    env: Env, params: dict[str, Any], param: str
) -> None:
    reply = await env.client.call("GET", URL, env.world.key(Role.TENANT_ADMIN), params=params)
    assert reply.status == 400, reply.text
    assert reply.error["param"] == param and reply.error["type"] == "invalid_request_error"
    assert param in reply.error["message"]


async def test_refused_calls_are_reported_apart_by_status(env: Env) -> None:
    a = env.world.a
    free = {"prompt_tokens": 0, "completion_tokens": 0, "cost_micros": 0}
    await UsageRepository(env.store.database).insert_many(
        [
            call_of(a, 0, T0, provider="openai"),
            call_of(a, 1, T0, status=429, **free),  # refused by a limit or budget
            call_of(a, 2, T0, status=403, **free),  # refused by access
            call_of(a, 3, T0, status=502, provider="openai"),  # the upstream failed
        ]
    )
    window = {"from": T0, "to": T0 + 60}
    [row] = (await get(env, Role.TENANT_ADMIN, group_by="model", **window))["data"]
    assert (row["requests"], row["refused"]) == (2, 2)
    by_status = await get(env, Role.VIEWER, group_by="status", **window)
    assert [(r["group"], r["requests"], r["refused"]) for r in by_status["data"]] == [
        ("200", 1, 0),
        ("403", 0, 1),
        ("429", 0, 1),
        ("502", 1, 0),
    ]
    refused = await get(env, Role.VIEWER, status="refused", **window)
    assert [(r["requests"], r["refused"]) for r in refused["data"]] == [(0, 2)]
    failed = await get(env, Role.VIEWER, status="5xx,429", **window)
    assert [(r["requests"], r["refused"]) for r in failed["data"]] == [(1, 1)]


async def test_the_default_window_is_the_last_30_days(env: Env) -> None:
    a = env.world.a
    now = time.time()
    await UsageRepository(env.store.database).insert_many(
        [call_of(a, 0, now - 60), call_of(a, 1, now - 29 * DAY), call_of(a, 2, now - 31 * DAY)]
    )
    body = await get(env, Role.TENANT_ADMIN)
    assert now <= body["to"] <= time.time() and body["to"] - body["from"] == 30 * DAY
    assert [(r["group"], r["requests"]) for r in body["data"]] == [(a.tenant, 2)]
    only_to = await get(env, Role.TENANT_ADMIN, to=now - 30 * DAY)
    assert [r["requests"] for r in only_to["data"]] == [1]
    assert only_to["from"] == pytest.approx(now - 60 * DAY)


async def test_the_route_is_documented(env: Env) -> None:
    reply = await env.client.call("GET", "/admin/openapi.json", env.world.key(Role.VIEWER))
    operation = reply.json["paths"][URL]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"group_by", "from", "to", "tenant_id"} <= names
    assert "400" in operation["responses"] and "422" not in operation["responses"]

"""GET /admin/v1/analytics/* over real HTTP, on SQLite and PostgreSQL: exact usage series,
top lists, error rates, latency percentiles and guardrail counts from known rows; the
window and its buckets; parameter errors; and scope (a tenant's callers never see another
tenant's numbers, not even by naming it)."""

from __future__ import annotations

import random
import statistics
from typing import Any

import pytest
import sqlalchemy as sa

from gatewise.identity.roles import Role
from gatewise.store.tables import request_records, usage
from tests.integration import admin_support as support
from tests.integration.admin_support import Env, Org

template, server, any_env = support.template, support.server, support.any_env
pytestmark = pytest.mark.asyncio(loop_scope="module")

V1 = "/admin/v1/analytics"
HOUR = 3600.0
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z, a whole hour
WINDOW: dict[str, Any] = {"from": T0, "to": T0 + 2 * HOUR}


def verdict(guardrail: str, category: str, action: str) -> dict[str, Any]:
    return {"guardrail": guardrail, "category": category, "score": 0.9, "action": action,
            "direction": "input", "index": 0, "spans": [[0, 5, category]]}  # fmt: skip


def record(org: Org, name: str, at: float, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": f"req-{org.tenant}-{name}", "at": at, "tenant_id": org.tenant,
        "team_id": org.teams["core"], "app_id": org.apps["svc"], "key_id": org.keys["svc"],
        "front_door": "openai", "operation": "chat", "method": "POST",
        "path": "/v1/chat/completions", "model": "gpt-4o-mini", "provider": "openai",
        "stream": False, "status": 200, "error_type": None, "duration_ms": 1.0,
        "first_byte_ms": None,
        "overhead_ms": None, "prompt_tokens": 10, "completion_tokens": 5, "cached_tokens": 0,
        "usage_estimated": False, "cost_micros": 10, "privacy": "off", "guardrails": None,
    }  # fmt: skip
    return {**values, **fields}


def usage_row(org: Org, at: float, requests: int, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "at": at, "tenant_id": org.tenant, "team_id": org.teams["core"],
        "app_id": org.apps["svc"], "key_id": org.keys["svc"], "model": "gpt-4o-mini",
        "provider": "openai", "operation": "chat", "stream": False, "status": 200,
        "prompt_tokens": 100 * requests, "completion_tokens": 20 * requests, "cached_tokens": 0,
        "cost_micros": 500_000 * requests, "usage_estimated": False, "duration_ms": 1.0,
        "requests": requests, "cost_unknown": 0,
    }  # fmt: skip
    return {**values, **fields}


async def seed(env: Env) -> None:
    a, b = env.world.a, env.world.b
    pii = verdict("pii", "email", "redact")
    client = {"key_id": a.keys["client"], "app_id": a.apps["client"], "model": "mock-gpt",
              "provider": "fake"}  # fmt: skip
    records = [
        record(a, "0", T0 + 10, duration_ms=100.0, first_byte_ms=10.0, overhead_ms=1.0,
               stream=True, guardrails=[pii]),
        record(a, "1", T0 + 20, duration_ms=200.0, first_byte_ms=20.0, overhead_ms=2.0,
               stream=True, guardrails=[]),
        record(a, "2", T0 + 30, duration_ms=300.0, first_byte_ms=40.0, overhead_ms=3.0,
               stream=True, guardrails=[pii, verdict("pii", "phone", "redact")]),
        record(a, "3", T0 + 40, duration_ms=400.0, overhead_ms=4.0),
        record(a, "4", T0 + 50, duration_ms=1000.0, overhead_ms=5.0),
        record(a, "5", T0 + 60, status=502, error_type="upstream_error", duration_ms=5.0),
        record(a, "6", T0 + 70, status=429, error_type="rate_limit_error", provider=None),
        record(a, "7", T0 + HOUR + 10, duration_ms=50.0, overhead_ms=0.5, **client),
        record(a, "8", T0 + HOUR + 20, status=400, error_type="guardrail_violation",
               guardrails=[verdict("injection", "jailbreak", "block")], **client),
        record(a, "9", T0 + HOUR + 30, status=503, error_type="upstream_error", **client),
        record(a, "old", T0 - 2 * HOUR, status=500, error_type="server_error",
               guardrails=[pii]),  # before the window
        record(b, "0", T0 + 15, duration_ms=9999.0, guardrails=[pii]),
        record(b, "1", T0 + 25, status=500, error_type="server_error"),
    ]  # fmt: skip
    usages = [
        usage_row(a, T0, 3),
        usage_row(a, T0 + 120, 2, prompt_tokens=20, completion_tokens=10, cost_micros=None,
                  cost_unknown=2, **client),
        usage_row(a, T0 + HOUR, 1, cost_micros=250_000),
        usage_row(a, T0 + HOUR + 60, 4, provider=None, status=429, prompt_tokens=0,
                  completion_tokens=0, cost_micros=0),
        usage_row(a, T0 - 86400, 10),  # a day earlier
        usage_row(b, T0, 5, cost_micros=9_000_000),
    ]  # fmt: skip
    async with env.store.database.engine.begin() as connection:
        await connection.execute(sa.insert(request_records), records)
        await connection.execute(sa.insert(usage), usages)


async def get(env: Env, route: str, role: Role = Role.TENANT_ADMIN, **params: Any) -> Any:
    reply = await env.client.call("GET", f"{V1}/{route}", env.world.key(role), params=params)
    assert reply.status == 200, reply.text
    return reply.json


# --- usage and top --------------------------------------------------------------------------


async def test_usage_series_per_hour_and_per_key(any_env: Env) -> None:
    env = any_env
    await seed(env)
    a = env.world.a
    body = await get(env, "usage", **WINDOW)
    assert (body["from"], body["to"], body["bucket"], body["bucket_seconds"]) == (
        T0, T0 + 2 * HOUR, "hour", 3600)  # fmt: skip
    assert (body["group_by"], body["truncated"]) == (None, False)
    assert body["data"] == [
        {"at": T0, "group": None, "requests": 5, "refused": 0, "prompt_tokens": 320,
         "completion_tokens": 70, "total_tokens": 390, "cost_usd": "1.500000",
         "cost_unknown_requests": 2},
        {"at": T0 + HOUR, "group": None, "requests": 1, "refused": 4, "prompt_tokens": 100,
         "completion_tokens": 20, "total_tokens": 120, "cost_usd": "0.250000",
         "cost_unknown_requests": 0},
    ]  # fmt: skip
    svc, client = a.keys["svc"], a.keys["client"]
    by_key = await get(env, "usage", group_by="key", **WINDOW)
    first_hour = sorted([(svc, 3, "1.500000"), (client, 2, "0.000000")])
    assert [(p["at"], p["group"], p["requests"], p["refused"], p["cost_usd"])
            for p in by_key["data"]] == [
        *((T0, key, n, 0, cost) for key, n, cost in first_hour),
        (T0 + HOUR, svc, 1, 4, "0.250000"),
    ]  # fmt: skip
    # Only the group that cost most, and the answer says there was more.
    top_one = await get(env, "usage", group_by="key", limit=1, bucket="all", **WINDOW)
    assert top_one["truncated"] is True and top_one["bucket_seconds"] is None
    assert [(p["at"], p["group"], p["requests"], p["refused"], p["total_tokens"])
            for p in top_one["data"]] == [(T0, svc, 4, 4, 480)]  # fmt: skip
    per_minute = await get(env, "usage", bucket="minute", model="mock-gpt", **WINDOW)
    assert [(p["at"], p["requests"]) for p in per_minute["data"]] == [(T0 + 120, 2)]


async def test_top_consumers_by_cost_tokens_and_requests(any_env: Env) -> None:
    env = any_env
    await seed(env)
    a, b = env.world.a, env.world.b
    svc, client = a.keys["svc"], a.keys["client"]
    by_cost = await get(env, "top", **WINDOW)
    assert (by_cost["group_by"], by_cost["by"]) == ("key", "cost")
    assert [
        (r["group"], r["cost_usd"], r["requests"], r["total_tokens"]) for r in by_cost["data"]
    ] == [(svc, "1.750000", 4, 480), (client, "0.000000", 2, 30)]
    by_tokens = await get(env, "top", by="tokens", group_by="model", **WINDOW)
    assert [(r["group"], r["total_tokens"]) for r in by_tokens["data"]] == [
        ("gpt-4o-mini", 480), ("mock-gpt", 30)]  # fmt: skip
    by_requests = await get(env, "top", by="requests", group_by="app", limit=1, **WINDOW)
    assert [(r["group"], r["requests"]) for r in by_requests["data"]] == [(a.apps["svc"], 4)]
    tenants = await get(env, "top", Role.PLATFORM_ADMIN, group_by="tenant", **WINDOW)
    assert [(r["group"], r["cost_usd"]) for r in tenants["data"]] == [
        (b.tenant, "9.000000"), (a.tenant, "1.750000")]  # fmt: skip


# --- errors, latency, guardrails --------------------------------------------------------------


async def test_error_rates_over_time_and_per_type(any_env: Env) -> None:
    env = any_env
    await seed(env)
    body = await get(env, "errors", **WINDOW)
    assert body["data"] == [
        {"at": T0, "group": None, "requests": 7, "errors": 2, "client_errors": 1,
         "server_errors": 1, "error_rate": 0.285714},
        {"at": T0 + HOUR, "group": None, "requests": 3, "errors": 2, "client_errors": 1,
         "server_errors": 1, "error_rate": 0.666667},
    ]  # fmt: skip
    assert body["types"] == [
        {"error_type": "upstream_error", "errors": 2},
        {"error_type": "guardrail_violation", "errors": 1},
        {"error_type": "rate_limit_error", "errors": 1},
    ]
    by_model = await get(env, "errors", group_by="model", bucket="all", **WINDOW)
    assert [(p["group"], p["requests"], p["errors"], p["error_rate"])
            for p in by_model["data"]] == [("gpt-4o-mini", 7, 2, 0.285714),
                                           ("mock-gpt", 3, 2, 0.666667)]  # fmt: skip
    by_provider = await get(env, "errors", group_by="provider", bucket="all", limit=1, **WINDOW)
    assert by_provider["truncated"] is True
    assert [(p["group"], p["errors"]) for p in by_provider["data"]] == [("fake", 2)]
    platform = await get(env, "errors", Role.PLATFORM_ADMIN, bucket="all", **WINDOW)
    assert [(p["requests"], p["errors"], p["server_errors"]) for p in platform["data"]] == [
        (12, 5, 3)]  # fmt: skip
    assert {"error_type": "server_error", "errors": 1} in platform["types"]


async def test_latency_percentiles_per_model_and_hour(any_env: Env) -> None:
    env = any_env
    await seed(env)
    body = await get(env, "latency", group_by="model", **WINDOW)
    assert body["data"] == [
        {"at": T0, "group": "gpt-4o-mini", "requests": 5,
         "duration_ms": {"count": 5, "p50": 300.0, "p90": 760.0, "p99": 976.0},
         "first_byte_ms": {"count": 3, "p50": 20.0, "p90": 36.0, "p99": 39.6},
         "overhead_ms": {"count": 5, "p50": 3.0, "p90": 4.6, "p99": 4.96}},
        {"at": T0 + HOUR, "group": "mock-gpt", "requests": 1,
         "duration_ms": {"count": 1, "p50": 50.0, "p90": 50.0, "p99": 50.0},
         "first_byte_ms": None,
         "overhead_ms": {"count": 1, "p50": 0.5, "p90": 0.5, "p99": 0.5}},
    ]  # fmt: skip
    # Ungrouped over the whole window: six answers (the errors are left out).
    [whole] = (await get(env, "latency", bucket="all", **WINDOW))["data"]
    assert (whole["at"], whole["group"], whole["requests"]) == (T0, None, 6)
    assert whole["duration_ms"] == {"count": 6, "p50": 250.0, "p90": 700.0, "p99": 970.0}
    b_only = await get(env, "latency", Role.PLATFORM_ADMIN, bucket="all",
                       tenant_id=env.world.b.tenant, **WINDOW)  # fmt: skip
    assert [p["duration_ms"]["p99"] for p in b_only["data"]] == [9999.0]


async def test_percentiles_match_the_inclusive_quantiles_of_many_rows(any_env: Env) -> None:
    """percentile_cont is R's type 7, Python's ``quantiles(method="inclusive")``."""
    env, a = any_env, any_env.world.a
    rng = random.Random(15)
    durations = [round(rng.lognormvariate(5, 1), 3) for _ in range(997)]
    rows = [record(a, str(n), T0 + n, duration_ms=value) for n, value in enumerate(durations)]
    async with env.store.database.engine.begin() as connection:
        await connection.execute(sa.insert(request_records), rows)
    [point] = (await get(env, "latency", bucket="all", **WINDOW))["data"]
    cuts = statistics.quantiles(durations, n=100, method="inclusive")
    assert point["duration_ms"]["count"] == 997
    assert [point["duration_ms"][p] for p in ("p50", "p90", "p99")] == [
        pytest.approx(cuts[k - 1], abs=1e-3) for k in (50, 90, 99)
    ]


async def test_guardrail_events_per_guardrail_category_and_action(any_env: Env) -> None:
    env = any_env
    await seed(env)
    body = await get(env, "guardrails", **WINDOW)
    assert body["data"] == [
        {"at": T0, "guardrail": "pii", "category": "email", "action": "redact", "events": 2,
         "requests": 2},
        {"at": T0, "guardrail": "pii", "category": "phone", "action": "redact", "events": 1,
         "requests": 1},
        {"at": T0 + HOUR, "guardrail": "injection", "category": "jailbreak",
         "action": "block", "events": 1, "requests": 1},
    ]  # fmt: skip
    blocks = await get(env, "guardrails", bucket="all", action="block", **WINDOW)
    assert [(p["guardrail"], p["events"]) for p in blocks["data"]] == [("injection", 1)]
    platform = await get(env, "guardrails", Role.PLATFORM_ADMIN, bucket="all",
                         guardrail="pii", **WINDOW)  # fmt: skip
    assert [(p["category"], p["events"], p["requests"]) for p in platform["data"]] == [
        ("email", 3, 3), ("phone", 1, 1)]  # fmt: skip


# --- the window, scope and refusals -----------------------------------------------------------


async def test_the_window_is_widened_to_whole_buckets(any_env: Env) -> None:
    env = any_env
    await seed(env)
    window: dict[str, Any] = {"from": "2027-01-15T08:30:00Z", "to": T0 + HOUR + 1}
    body = await get(env, "errors", **window)
    assert (body["from"], body["to"]) == (T0, T0 + 2 * HOUR)
    assert [p["requests"] for p in body["data"]] == [7, 3]
    day = await get(env, "guardrails", bucket="day", **WINDOW)
    assert {p["at"] for p in day["data"]} == {T0 - T0 % 86400}


ROUTES = ["usage", "top", "errors", "latency", "guardrails"]


@pytest.mark.parametrize("role", [Role.TENANT_ADMIN, Role.VIEWER], ids=lambda r: r.value)
async def test_tenant_callers_never_see_another_tenants_numbers(any_env: Env, role: Role) -> None:
    env = any_env
    await seed(env)
    a, b = env.world.a, env.world.b
    for route in ROUTES:
        for group_by in ("tenant", "key", "model", None):
            params: dict[str, Any] = {**WINDOW, "bucket": "all"} if route != "top" else dict(WINDOW)
            if group_by and route != "guardrails":
                params["group_by"] = group_by
            reply = await env.client.call(
                "GET", f"{V1}/{route}", env.world.key(role), params=params
            )
            assert reply.status == 200, reply.text
            assert not [i for i in b.ids() if i in reply.text], route
            assert "9999.0" not in reply.text and "9.000000" not in reply.text
        named_b = await get(env, route, role, tenant_id=b.tenant, **WINDOW)
        assert named_b["data"] == []
        own = await get(env, route, role, tenant_id=a.tenant, **WINDOW)
        assert own["data"] != []
    errors = await get(env, "errors", role, bucket="all", **WINDOW)
    assert [p["requests"] for p in errors["data"]] == [10]  # A's ten, not B's two


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.CONSUMER], ids=lambda r: r.value)
async def test_roles_without_analytics_read_are_refused(any_env: Env, role: Role) -> None:
    for route in ROUTES:
        reply = await any_env.client.call("GET", f"{V1}/{route}", any_env.world.key(role))
        assert reply.status == 403
        assert reply.error["type"] == "permission_denied"
        assert "analytics:read" in reply.error["message"]
    assert (await any_env.client.call("GET", f"{V1}/usage")).status == 401


@pytest.mark.parametrize(
    ("route", "params", "param", "words"),
    [
        ("usage", {"bucket": "minute", "from": T0, "to": T0 + 30 * HOUR}, "bucket", "1800"),
        ("errors", {"bucket": "day", "from": 0, "to": T0}, "bucket", "at most 1500"),
        ("latency", {"bucket": "minute", "from": T0, "to": T0 + 24 * HOUR, "group_by": "model",
                     "limit": 50}, "limit", "fewer groups"),
        ("usage", {"bucket": "week"}, "bucket", "minute"),
        ("usage", {"group_by": "colour"}, "group_by", "tenant"),
        ("top", {"by": "money"}, "by", "cost"),
        ("top", {"group_by": None}, "group_by", "group_by"),
        ("errors", {"limit": 0}, "limit", "limit"),
        ("latency", {"limit": 101}, "limit", "limit"),
        ("guardrails", {"from": "last tuesday"}, "from", "ISO-8601"),
        ("guardrails", {"to": "-5"}, "to", "1970"),
        ("usage", {"from": T0, "to": T0}, "from", "before"),
        ("top", {"tenant_id": "t" * 300}, "tenant_id", "tenant_id"),
    ],
)  # fmt: skip
async def test_invalid_parameters_are_400_naming_them(
    any_env: Env, route: str, params: dict[str, Any], param: str, words: str
) -> None:
    sent = {name: value for name, value in params.items() if value is not None}
    if params.get("group_by", "") is None:
        sent["group_by"] = ""
    key = any_env.world.key(Role.TENANT_ADMIN)
    reply = await any_env.client.call("GET", f"{V1}/{route}", key, params=sent)
    assert reply.status == 400, reply.text
    assert reply.error["param"] == param and reply.error["type"] == "invalid_request_error"
    assert words in reply.error["message"]


async def test_the_routes_are_documented(any_env: Env) -> None:
    reply = await any_env.client.call("GET", "/admin/openapi.json", any_env.world.key(Role.VIEWER))
    paths = reply.json["paths"]
    for route in ROUTES:
        operation = paths[f"{V1}/{route}"]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert {"from", "to", "tenant_id", "model", "provider", "key_id"} <= names
        assert "400" in operation["responses"] and "422" not in operation["responses"]
        assert operation["tags"] == ["analytics"]
    assert {"group_by", "bucket", "limit"} <= {
        p["name"] for p in paths[f"{V1}/usage"]["get"]["parameters"]
    }

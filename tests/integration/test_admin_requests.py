"""GET /admin/v1/requests and /admin/v1/requests/{id} over real HTTP, on SQLite and
PostgreSQL: filters, pagination, bodies only in one record's view, parameter errors, and
scope (a tenant's callers never see another tenant's records)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gatewise.identity.roles import Role
from gatewise.store.records import COLUMNS, RecordsRepository
from gatewise.store.tables import request_records
from tests.integration import admin_support as support
from tests.integration.admin_support import Env, Org

template, server, any_env = support.template, support.server, support.any_env
pytestmark = pytest.mark.asyncio(loop_scope="module")

URL = "/admin/v1/requests"


def record(org: Org, n: int, at: float, **fields: Any) -> tuple[Any, ...]:
    values: dict[str, Any] = dict.fromkeys(COLUMNS)
    values.update(
        id=f"req_{org.tenant}_{n}", at=at, tenant_id=org.tenant, app_id=org.apps["svc"],
        key_id=org.keys["svc"], front_door="openai", operation="chat", method="POST",
        path="/v1/chat/completions", model="gpt-4o-mini", stream=False, status=200,
        duration_ms=20.0, prompt_tokens=9, completion_tokens=3, cached_tokens=0,
        usage_estimated=False, cost_micros=1_500, privacy="off", user_agent="OpenAI/Python",
        attempts='[{"provider": "up", "model": "gpt-4o-mini", "deployment": "d1", "status": 200,'
        ' "error": null, "first_byte_ms": 5.0, "duration_ms": 15.0}]',
        guardrails='[{"guardrail": "pii", "category": "EMAIL_ADDRESS", "score": 0.9, '
        '"action": "mask", "direction": "input", "index": 0, "spans": [[3, 23, "EMAIL_ADDRESS"]]}]',
    )  # fmt: skip
    values.update(fields)
    return tuple(values[name] for name in COLUMNS)


async def seed(env: Env) -> float:
    a, b = env.world.a, env.world.b
    now = time.time()
    rows = [record(a, n, now - n) for n in range(12)]
    rows += [
        record(a, 50, now - 100, status=429, model="mock-gpt", key_id=a.keys["client"]),
        record(a, 51, now - 200, status=502, error_type="upstream_error", privacy="full",
               request_body="user: the blue umbrella", response_body="It is in the hall."),
        record(b, 0, now - 3, model="mock-gpt", request_body="user: secret plans of b",
               privacy="full"),
    ]  # fmt: skip
    async with env.store.database.engine.begin() as connection:  # only these rows
        await connection.execute(request_records.delete())  # (not the world's own)
    await RecordsRepository(env.store.database).insert(rows)
    return now


async def get(env: Env, role: Role, path: str = URL, **params: Any) -> Any:
    reply = await env.client.call("GET", path, env.world.key(role), params=params)
    assert reply.status == 200, reply.text
    return reply.json


async def test_filters_and_pages(any_env: Env) -> None:
    env = any_env
    now = await seed(env)
    a = env.world.a
    first = await get(env, Role.TENANT_ADMIN, limit=5)
    assert (first["total"], first["limit"], first["offset"]) == (14, 5, 0)
    assert [r["id"] for r in first["data"]] == [f"req_{a.tenant}_{n}" for n in range(5)]
    row = first["data"][0]
    assert row["cost_usd"] == "0.001500" and row["attempts"][0]["deployment"] == "d1"
    assert row["guardrails"][0]["spans"] == [[3, 23, "EMAIL_ADDRESS"]]
    assert "request_body" not in row
    last = await get(env, Role.TENANT_ADMIN, limit=5, offset=10)
    assert [r["id"] for r in last["data"]] == [f"req_{a.tenant}_{n}" for n in (10, 11, 50, 51)]
    errors = await get(env, Role.VIEWER, status="4xx,5xx")
    assert [r["status"] for r in errors["data"]] == [429, 502]
    assert (await get(env, Role.VIEWER, status="502"))["total"] == 1
    assert (await get(env, Role.VIEWER, key_id=a.keys["client"]))["total"] == 1
    assert (await get(env, Role.VIEWER, model="mock-gpt"))["total"] == 1  # not b's
    assert [r["id"] for r in (await get(env, Role.VIEWER, q="UMBRELLA"))["data"]] == [
        f"req_{a.tenant}_51"
    ]
    window = await get(env, Role.VIEWER, since=now - 150, until=now - 5.5)
    assert window["total"] == 7  # n = 6..11, and 50


async def test_one_record_with_its_bodies(any_env: Env) -> None:
    env = any_env
    await seed(env)
    a = env.world.a
    one = await get(env, Role.TENANT_ADMIN, f"{URL}/req_{a.tenant}_51")
    assert one["request_body"] == "user: the blue umbrella"
    assert one["response_body"] == "It is in the hall."
    assert (one["status"], one["error_type"], one["privacy"]) == (502, "upstream_error", "full")


@pytest.mark.parametrize("role", [Role.TENANT_ADMIN, Role.VIEWER], ids=lambda r: r.value)
async def test_tenant_callers_never_see_another_tenants_records(any_env: Env, role: Role) -> None:
    env = any_env
    await seed(env)
    b = env.world.b
    key = env.world.key(role)
    listed = await get(env, role, limit=200)
    assert all(r["tenant_id"] == env.world.a.tenant for r in listed["data"])
    asked = await get(env, role, tenant_id=b.tenant)
    assert (asked["total"], asked["data"]) == (0, [])
    reply = await env.client.call("GET", f"{URL}/req_{b.tenant}_0", key)
    missing = await env.client.call("GET", f"{URL}/req_nope", key)
    assert reply.status == missing.status == 404
    assert reply.error["message"] == f"No request with id 'req_{b.tenant}_0'."
    everyone = await get(env, Role.PLATFORM_ADMIN, limit=200)
    assert everyone["total"] == 15
    theirs = await get(env, Role.PLATFORM_ADMIN, f"{URL}/req_{b.tenant}_0")
    assert theirs["request_body"] == "user: secret plans of b"


@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.CONSUMER], ids=lambda r: r.value)
async def test_roles_without_audit_read_are_refused(any_env: Env, role: Role) -> None:
    reply = await any_env.client.call("GET", URL, any_env.world.key(role))
    assert reply.status == 403


async def test_bad_parameters_are_named(any_env: Env) -> None:
    key = any_env.world.key(Role.TENANT_ADMIN)
    reply = await any_env.client.call("GET", URL, key, params={"status": "teapot"})
    assert reply.status == 400 and reply.error["param"] == "status"
    assert "'teapot' is not a status" in reply.error["message"]
    reply = await any_env.client.call("GET", URL, key, params={"limit": 0})
    assert reply.status == 400

"""Refused admin calls leave a trace, on SQLite and PostgreSQL: 401s, 403s and 404s on
another tenant's objects are written to the audit trail (who, what was attempted, the
request id), where platform admins see them; a tenant never learns from its own trail
that an id it probed belongs to another tenant."""

from __future__ import annotations

from typing import Any

import pytest

from gatewise.identity.roles import Role
from tests.integration import admin_support as support
from tests.integration.admin_support import Env

template, server, any_env = support.template, support.server, support.any_env
pytestmark = pytest.mark.asyncio(loop_scope="module")
V1 = "/admin/v1"


def ok(reply: support.Reply, status: int = 200) -> Any:
    assert reply.status == status, reply.text
    return reply.json if reply.text else None


async def refusals(env: Env, key: str, **params: Any) -> list[dict[str, Any]]:
    page = ok(
        await env.client.call("GET", f"{V1}/audit", key, params={"action": "refuse", **params})
    )
    entries: list[dict[str, Any]] = page["data"]
    return entries


async def test_probing_another_tenants_ids_is_seen_by_platform_admins_only(any_env: Env) -> None:
    a, b, c = any_env.world.a, any_env.world.b, any_env.client
    admin = any_env.world.key(Role.TENANT_ADMIN)
    version = await any_env.store.version()
    probe = await c.call(
        "GET", f"{V1}/keys/{b.keys['svc']}", admin, headers={"x-request-id": "req-probe-1"}
    )
    assert probe.status == 404
    patch = await c.call("PATCH", f"{V1}/apps/{b.apps['svc']}", admin, {"name": "mine"})
    assert patch.status == 404
    missing = await c.call("GET", f"{V1}/keys/key_doesnotexist00", admin)
    assert missing.status == 404 and missing.error == {
        **probe.error,
        "message": "No key with id 'key_doesnotexist00'.",
    }
    assert await any_env.store.version() == version  # a record of a refusal is no change

    seen = await refusals(any_env, any_env.world.platform_key, actor=f"key:{a.keys['admin']}")
    assert [(e["object_type"], e["object_id"]) for e in seen] == [
        ("app", b.apps["svc"]),
        ("key", b.keys["svc"]),
    ]  # newest first; the id that never existed is not a probe
    entry = seen[1]
    assert entry["request_id"] == "req-probe-1" and entry["actor_tenant_id"] == a.tenant
    assert entry["tenant_id"] is None  # the platform's trail: neither tenant reads it
    assert entry["after"]["method"] == "GET" and entry["after"]["status"] == 404
    assert entry["after"]["path"] == f"{V1}/keys/{b.keys['svc']}"
    assert seen[0]["after"]["method"] == "PATCH"
    for reader in (admin, any_env.world.key(Role.VIEWER)):
        assert await refusals(any_env, reader) == []
    trail = ok(await c.call("GET", f"{V1}/audit", admin, params={"limit": 200}))
    assert b.keys["svc"] not in str(trail)


async def test_a_403_is_in_the_callers_tenant_trail(any_env: Env) -> None:
    a, c = any_env.world.a, any_env.client
    viewer = any_env.world.key(Role.VIEWER)
    refused = await c.call(
        "POST", f"{V1}/teams", viewer, {"name": "sneaky"}, headers={"x-request-id": "req-403"}
    )
    assert refused.status == 403
    seen = await refusals(any_env, any_env.world.key(Role.TENANT_ADMIN))
    assert len(seen) == 1
    entry = seen[0]
    assert entry["actor"] == f"key:{a.keys['viewer']}" and entry["tenant_id"] == a.tenant
    assert entry["object_type"] == "team" and entry["request_id"] == "req-403"
    assert entry["after"]["status"] == 403 and "teams:write" in entry["after"]["message"]
    assert "sneaky" not in str(entry)  # what was attempted: the call, never its body


async def test_a_401_is_recorded_without_the_credential(any_env: Env) -> None:
    c = any_env.client
    bogus = "gw-abcdefghijkm_" + "S" * 43
    for key in (bogus, None):
        reply = await c.call(
            "DELETE", f"{V1}/tenants/{any_env.world.a.tenant}", key,
            headers={"x-request-id": "req-401"},
        )  # fmt: skip
        assert reply.status == 401
    seen = await refusals(any_env, any_env.world.platform_key, actor="unauthenticated")
    assert len(seen) == 2
    assert {e["request_id"] for e in seen} == {"req-401"}
    assert seen[0]["after"]["method"] == "DELETE" and seen[0]["object_type"] == "tenant"
    assert "S" * 20 not in str(seen) and bogus not in str(seen)
    assert await refusals(any_env, any_env.world.key(Role.TENANT_ADMIN)) == []


async def test_allowed_calls_and_bad_input_are_no_refusals(any_env: Env) -> None:
    c, admin = any_env.client, any_env.world.key(Role.TENANT_ADMIN)
    ok(await c.call("GET", f"{V1}/apps", admin))
    assert (await c.call("POST", f"{V1}/teams", admin, {"name": "Not A Slug"})).status == 400
    assert (await c.call("GET", f"{V1}/widgets", admin)).status == 404
    assert await refusals(any_env, any_env.world.platform_key) == []

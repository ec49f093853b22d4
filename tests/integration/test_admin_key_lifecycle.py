"""A key's power and life after the fact, on SQLite and PostgreSQL: a key never outranks
its owner's current role, a rotated key's grace period only shrinks, and a dead key
(expired or revoked) cannot be brought back, by rotation or by a new expiry."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.integration import admin_support as support
from tests.integration.admin_support import Env

template, server, any_env = support.template, support.server, support.any_env
pytestmark = pytest.mark.asyncio(loop_scope="module")
V1 = "/admin/v1"


def ok(reply: support.Reply, status: int = 200) -> Any:
    assert reply.status == status, reply.text
    return reply.json if reply.text else None


# --- a key's role follows its owner's demotion ---------------------------------------------------


async def test_a_user_key_loses_what_its_demoted_owner_lost(any_env: Env) -> None:
    a, c, root = any_env.world.a, any_env.client, any_env.world.platform_key
    made = ok(
        await c.call(
            "POST", f"{V1}/keys", root,
            {"name": "admin-explicit", "user_id": a.users["admin"], "role": "tenant_admin"},
        ),
        201,
    )  # fmt: skip
    key = made["key"]
    assert ok(await c.call("POST", f"{V1}/apps", key, {"name": "before"}), 201)
    ok(await c.call("PATCH", f"{V1}/users/{a.users['admin']}", root, {"role": "viewer"}))

    me = ok(await c.call("GET", f"{V1}/me", key))
    assert me["role"] == "viewer" and "apps:write" not in me["permissions"]
    refused = await c.call("POST", f"{V1}/apps", key, {"name": "after"})
    assert refused.status == 403, refused.text
    assert ok(await c.call("GET", f"{V1}/audit", key))["total"] > 0  # what a viewer may do


async def test_an_app_key_loses_what_its_demoted_app_lost(any_env: Env) -> None:
    a, c, root = any_env.world.a, any_env.client, any_env.world.platform_key
    made = ok(
        await c.call(
            "POST", f"{V1}/keys", root,
            {"name": "svc-explicit", "app_id": a.apps["svc"], "role": "developer"},
        ),
        201,
    )  # fmt: skip
    ok(await c.call("PATCH", f"{V1}/apps/{a.apps['svc']}", root, {"role": "consumer"}))
    me = ok(await c.call("GET", f"{V1}/me", made["key"]))
    assert me["role"] == "consumer"
    refused = await c.call("GET", f"{V1}/apps", made["key"])
    assert refused.status == 403, refused.text


async def test_a_key_narrower_than_its_owner_keeps_its_own_role(any_env: Env) -> None:
    a, c, root = any_env.world.a, any_env.client, any_env.world.platform_key
    made = ok(
        await c.call(
            "POST", f"{V1}/keys", root,
            {"name": "narrow", "user_id": a.users["admin"], "role": "viewer"},
        ),
        201,
    )  # fmt: skip
    ok(await c.call("PATCH", f"{V1}/users/{a.users['admin']}", root, {"role": "tenant_admin"}))
    assert ok(await c.call("GET", f"{V1}/me", made["key"]))["role"] == "viewer"


async def test_a_key_whose_role_no_longer_fits_its_owner_stops_working(any_env: Env) -> None:
    """Developer and viewer each hold a permission the other lacks: a developer key of a user
    demoted to viewer has no role left that is below both, so it is refused (403), never
    given the owner's role (the key was made narrower than that on purpose)."""
    a, c, root = any_env.world.a, any_env.client, any_env.world.platform_key
    made = ok(
        await c.call(
            "POST", f"{V1}/keys", root,
            {"name": "dev-explicit", "user_id": a.users["admin"], "role": "developer"},
        ),
        201,
    )  # fmt: skip
    ok(await c.call("PATCH", f"{V1}/users/{a.users['admin']}", root, {"role": "viewer"}))
    refused = await c.call("GET", f"{V1}/me", made["key"])
    assert refused.status == 403, refused.text
    assert "developer" in refused.error["message"] and "viewer" in refused.error["message"]
    # Promoting the owner again brings the key back with its own role.
    ok(await c.call("PATCH", f"{V1}/users/{a.users['admin']}", root, {"role": "tenant_admin"}))
    assert ok(await c.call("GET", f"{V1}/me", made["key"]))["role"] == "developer"


# --- rotation and expiry -----------------------------------------------------------------------


async def test_a_rotated_keys_grace_period_only_shrinks(any_env: Env) -> None:
    a, c, key = any_env.world.a, any_env.client, any_env.world.platform_key
    old = a.keys["svc"]
    ok(await c.call("POST", f"{V1}/keys/{old}/rotate", key, {"grace_seconds": 60}), 201)
    ends = ok(await c.call("GET", f"{V1}/keys/{old}", key))["expires_at"]
    for expires_at in (None, time.time() + 3600, ends + 1):
        reply = await c.call("PATCH", f"{V1}/keys/{old}", key, {"expires_at": expires_at})
        assert reply.status == 409, reply.text
        assert reply.error["type"] == "conflict" and "rotated" in reply.error["message"]
    assert ok(await c.call("GET", f"{V1}/keys/{old}", key))["expires_at"] == ends
    sooner = time.time() + 10
    shrunk = ok(await c.call("PATCH", f"{V1}/keys/{old}", key, {"expires_at": sooner}))
    assert shrunk["expires_at"] == pytest.approx(sooner)
    renamed = ok(await c.call("PATCH", f"{V1}/keys/{old}", key, {"name": "old-svc"}))
    assert renamed["name"] == "old-svc"  # other fields stay changeable


async def test_an_expired_key_cannot_be_rotated_or_revived(any_env: Env) -> None:
    a, c, root = any_env.world.a, any_env.client, any_env.world.platform_key
    # A second ahead: the create itself took more than 0.3 s on a busy CI machine (the key
    # was then refused as expiring in the past); wait for the moment it was given.
    expires_at = time.time() + 1.0
    brief = ok(
        await c.call(
            "POST", f"{V1}/keys", root,
            {"name": "brief", "app_id": a.apps["svc"], "expires_at": expires_at},
        ),
        201,
    )  # fmt: skip
    await asyncio.sleep(max(0.0, expires_at - time.time()) + 0.05)
    assert (await c.call("GET", f"{V1}/me", brief["key"])).status == 401
    version = await any_env.store.version()
    rotated = await c.call("POST", f"{V1}/keys/{brief['id']}/rotate", root)
    assert rotated.status == 409, rotated.text
    assert "expired" in rotated.error["message"]
    for expires_at in (None, time.time() + 3600):
        revived = await c.call(
            "PATCH", f"{V1}/keys/{brief['id']}", root, {"expires_at": expires_at}
        )
        assert revived.status == 409, revived.text
        assert "expired" in revived.error["message"]
    assert await any_env.store.version() == version
    assert (await c.call("GET", f"{V1}/me", brief["key"])).status == 401


async def test_a_revoked_key_cannot_be_rotated(any_env: Env) -> None:
    a, c, root = any_env.world.a, any_env.client, any_env.world.platform_key
    ok(await c.call("POST", f"{V1}/keys/{a.keys['svc']}/revoke", root))
    rotated = await c.call("POST", f"{V1}/keys/{a.keys['svc']}/rotate", root)
    assert rotated.status == 409, rotated.text
    assert "revoked" in rotated.error["message"]
    revived = await c.call("PATCH", f"{V1}/keys/{a.keys['svc']}", root, {"expires_at": None})
    assert revived.status == 409, revived.text

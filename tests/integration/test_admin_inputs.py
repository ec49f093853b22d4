"""Admin input at the edges, on SQLite and PostgreSQL: list offsets past any integer the
database holds, PATCH bodies that change nothing, and audit times that are no times."""

from __future__ import annotations

from typing import Any

import pytest

from gatewise.identity.roles import Role
from tests.integration import admin_support as support
from tests.integration.admin_support import Env

template, server, any_env = support.template, support.server, support.any_env
pytestmark = pytest.mark.asyncio(loop_scope="module")
V1 = "/admin/v1"
LISTS = ["tenants", "teams", "apps", "users", "keys", "subscriptions", "audit"]


def ok(reply: support.Reply, status: int = 200) -> Any:
    assert reply.status == status, reply.text
    return reply.json if reply.text else None


def assert_invalid(reply: support.Reply, param: str) -> None:
    assert reply.status == 400, reply.text
    error = reply.error
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        param,
        "invalid_value",
    )
    assert param in error["message"]


async def test_list_offsets_out_of_range_are_400(any_env: Env) -> None:
    for path in LISTS:
        for offset in ("9223372036854775808", "1000000001", "1e3", "-1"):
            reply = await any_env.client.call(
                "GET", f"{V1}/{path}", any_env.world.platform_key, params={"offset": offset}
            )
            assert_invalid(reply, "offset")


async def test_the_largest_offset_answers_an_empty_page(any_env: Env) -> None:
    for path in LISTS:
        page = ok(
            await any_env.client.call(
                "GET", f"{V1}/{path}", any_env.world.platform_key,
                params={"offset": 1_000_000_000},
            )
        )  # fmt: skip
        assert page["data"] == [] and page["offset"] == 1_000_000_000 and page["total"] > 0


def _patch_targets(env: Env) -> list[str]:
    a = env.world.a
    return [
        f"keys/{a.keys['svc']}",
        f"tenants/{a.tenant}",
        f"teams/{a.teams['core']}",
        f"apps/{a.apps['svc']}",
        f"users/{a.users['spare']}",
    ]


async def test_an_empty_patch_changes_nothing_on_every_route(any_env: Env) -> None:
    """``{}`` is 200 with the object as it was: no write, no audit entry, no new version."""
    c, root = any_env.client, any_env.world.platform_key
    for target in _patch_targets(any_env):
        before = ok(await c.call("GET", f"{V1}/{target}", root))
        version = await any_env.store.version()
        entries = (await any_env.store.list_audit(limit=1)).total
        after = ok(await c.call("PATCH", f"{V1}/{target}", root, {}))
        assert after == before, target
        assert await any_env.store.version() == version, target
        assert (await any_env.store.list_audit(limit=1)).total == entries, target


async def test_an_empty_patch_is_still_authorized(any_env: Env) -> None:
    a, c = any_env.world.a, any_env.client
    viewer = any_env.world.key(Role.VIEWER)
    assert (await c.call("PATCH", f"{V1}/keys/{a.keys['svc']}", viewer, {})).status == 403
    other = await c.call(
        "PATCH",
        f"{V1}/keys/{any_env.world.b.keys['svc']}",
        any_env.world.key(Role.TENANT_ADMIN),
        {},
    )
    assert other.status == 404


async def test_an_empty_patch_of_a_revoked_key_is_a_conflict(any_env: Env) -> None:
    a, c, root = any_env.world.a, any_env.client, any_env.world.platform_key
    ok(await c.call("POST", f"{V1}/keys/{a.keys['svc']}/revoke", root))
    reply = await c.call("PATCH", f"{V1}/keys/{a.keys['svc']}", root, {})
    assert reply.status == 409 and reply.error["type"] == "conflict"


async def test_audit_times_must_be_finite_epoch_seconds(any_env: Env) -> None:
    for name, value in [
        ("since", "1e300"),
        ("until", "nan"),
        ("since", "inf"),
        ("until", "-inf"),
        ("since", "-1"),
        ("until", "253402300800"),  # after 9999-12-31T23:59:59Z
    ]:
        reply = await any_env.client.call(
            "GET", f"{V1}/audit", any_env.world.platform_key, params={name: value}
        )
        assert_invalid(reply, name)


async def test_audit_times_at_the_edges_of_the_range_work(any_env: Env) -> None:
    page = ok(
        await any_env.client.call(
            "GET", f"{V1}/audit", any_env.world.platform_key,
            params={"since": 0, "until": 253402300799},
        )
    )  # fmt: skip
    assert page["total"] > 0


async def test_key_expiry_must_be_a_finite_time(any_env: Env) -> None:
    a, c, root = any_env.world.a, any_env.client, any_env.world.platform_key
    for expires_at in ("1e300", "NaN", "Infinity"):
        raw = f'{{"name": "k", "app_id": "{a.apps["svc"]}", "expires_at": {expires_at}}}'
        made = await c.call("POST", f"{V1}/keys", root, raw=raw.encode())
        assert made.status == 400 and made.error["param"] == "expires_at", made.text
        changed = await c.call(
            "PATCH",
            f"{V1}/keys/{a.keys['svc']}",
            root,
            raw=f'{{"expires_at": {expires_at}}}'.encode(),
        )
        assert changed.status == 400 and changed.error["param"] == "expires_at", changed.text

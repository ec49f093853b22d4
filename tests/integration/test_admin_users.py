"""Users' emails through the admin API, on SQLite and PostgreSQL: unique within a tenant,
so creating a user never tells whether an address exists in another tenant."""

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


async def test_an_email_of_another_tenant_is_no_conflict(any_env: Env) -> None:
    """Tenant B's admin user is ``admin@globex.example``: tenant A may have its own."""
    a, c = any_env.world.a, any_env.client
    key = any_env.world.key(Role.TENANT_ADMIN)
    body = {"email": "Admin@Globex.example", "role": "viewer"}
    made = ok(await c.call("POST", f"{V1}/users", key, body), 201)
    assert (made["email"], made["tenant_id"]) == ("admin@globex.example", a.tenant)
    # What a tenant admin learns is only about its own tenant: the same email twice there.
    again = await c.call("POST", f"{V1}/users", key, body)
    assert again.status == 409 and again.error["param"] == "email"
    assert "in this tenant" in again.error["message"]
    assert any_env.world.b.tenant not in again.text
    mine = ok(await c.call("GET", f"{V1}/users", key, params={"email": "admin@globex.example"}))
    assert [u["id"] for u in mine["data"]] == [made["id"]]
    everyone = ok(
        await c.call("GET", f"{V1}/users", any_env.world.platform_key,
                     params={"email": "admin@globex.example"})
    )  # fmt: skip
    assert everyone["total"] == 2


async def test_platform_admins_emails_are_unique_among_them(any_env: Env) -> None:
    c, root = any_env.client, any_env.world.platform_key
    body = {"email": "admin@acme.example", "role": "platform_admin"}
    assert ok(await c.call("POST", f"{V1}/users", root, body), 201)["tenant_id"] is None
    again = await c.call("POST", f"{V1}/users", root, body)
    assert again.status == 409 and again.error["param"] == "email"

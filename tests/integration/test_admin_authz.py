"""Admin authorization over real HTTP: every route x every role, and every route against
another tenant's objects. ``CASES`` must name every route of the app (checked below), so a
new route without an authorization test fails here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from gatewise.admin.app import create_admin_app
from gatewise.identity.records import Actor, Status
from gatewise.identity.roles import PERMISSIONS, Permission, Role
from tests.integration import admin_support as support
from tests.integration.admin_support import Env, Org, Reply

template, server, env = support.template, support.server, support.env
pytestmark = pytest.mark.asyncio(loop_scope="module")

P = Permission
V1 = "/admin/v1"


@dataclass(frozen=True)
class Case:
    """One admin route, and how to aim it at a tenant's objects."""

    method: str
    route: str  # the path as declared in the app
    permission: Permission | None  # None: any authenticated caller
    kind: str  # me | list | object | create
    build: Callable[[Org], tuple[str, Any]]  # org -> (url, JSON body or None)

    @property
    def id(self) -> str:
        return f"{self.method} {self.route.removeprefix(V1)}"


CASES = [
    Case("GET", f"{V1}/me", None, "me", lambda o: (f"{V1}/me", None)),
    # tenants
    Case("GET", f"{V1}/tenants", P.TENANTS_READ, "list", lambda o: (f"{V1}/tenants", None)),
    Case("POST", f"{V1}/tenants", P.TENANTS_WRITE, "create",
         lambda o: (f"{V1}/tenants", {"name": "newco"})),
    Case("GET", f"{V1}/tenants/{{tenant_id}}", P.TENANTS_READ, "object",
         lambda o: (f"{V1}/tenants/{o.tenant}", None)),
    Case("PATCH", f"{V1}/tenants/{{tenant_id}}", P.TENANTS_WRITE, "object",
         lambda o: (f"{V1}/tenants/{o.tenant}", {"display_name": "Renamed"})),
    Case("DELETE", f"{V1}/tenants/{{tenant_id}}", P.TENANTS_WRITE, "object",
         lambda o: (f"{V1}/tenants/{o.tenant}", None)),
    # teams
    Case("GET", f"{V1}/teams", P.TEAMS_READ, "list",
         lambda o: (f"{V1}/teams?tenant_id={o.tenant}", None)),
    Case("POST", f"{V1}/teams", P.TEAMS_WRITE, "create",
         lambda o: (f"{V1}/teams", {"tenant_id": o.tenant, "name": "new-team"})),
    Case("GET", f"{V1}/teams/{{team_id}}", P.TEAMS_READ, "object",
         lambda o: (f"{V1}/teams/{o.teams['core']}", None)),
    Case("PATCH", f"{V1}/teams/{{team_id}}", P.TEAMS_WRITE, "object",
         lambda o: (f"{V1}/teams/{o.teams['core']}", {"allowed_models": ["gpt-4o-mini"]})),
    Case("DELETE", f"{V1}/teams/{{team_id}}", P.TEAMS_WRITE, "object",
         lambda o: (f"{V1}/teams/{o.teams['empty']}", None)),
    # apps (developers of team core may write app svc)
    Case("GET", f"{V1}/apps", P.APPS_READ, "list",
         lambda o: (f"{V1}/apps?tenant_id={o.tenant}", None)),
    Case("POST", f"{V1}/apps", P.APPS_WRITE, "create",
         lambda o: (f"{V1}/apps", {"tenant_id": o.tenant, "name": "new-app",
                                   "team_id": o.teams["core"]})),
    Case("GET", f"{V1}/apps/{{app_id}}", P.APPS_READ, "object",
         lambda o: (f"{V1}/apps/{o.apps['svc']}", None)),
    Case("PATCH", f"{V1}/apps/{{app_id}}", P.APPS_WRITE, "object",
         lambda o: (f"{V1}/apps/{o.apps['svc']}", {"allowed_models": ["mock-gpt"]})),
    Case("DELETE", f"{V1}/apps/{{app_id}}", P.APPS_WRITE, "object",
         lambda o: (f"{V1}/apps/{o.apps['svc']}", None)),
    # users
    Case("GET", f"{V1}/users", P.USERS_READ, "list",
         lambda o: (f"{V1}/users?tenant_id={o.tenant}", None)),
    Case("POST", f"{V1}/users", P.USERS_WRITE, "create",
         lambda o: (f"{V1}/users", {"tenant_id": o.tenant, "email": "new@x.example",
                                    "role": "consumer"})),
    Case("GET", f"{V1}/users/{{user_id}}", P.USERS_READ, "object",
         lambda o: (f"{V1}/users/{o.users['spare']}", None)),
    Case("PATCH", f"{V1}/users/{{user_id}}", P.USERS_WRITE, "object",
         lambda o: (f"{V1}/users/{o.users['spare']}", {"status": "disabled"})),
    Case("DELETE", f"{V1}/users/{{user_id}}", P.USERS_WRITE, "object",
         lambda o: (f"{V1}/users/{o.users['spare']}", None)),
    # keys (of app svc)
    Case("GET", f"{V1}/keys", P.KEYS_READ, "list",
         lambda o: (f"{V1}/keys?tenant_id={o.tenant}", None)),
    Case("POST", f"{V1}/keys", P.KEYS_WRITE, "create",
         lambda o: (f"{V1}/keys", {"name": "new", "app_id": o.apps["svc"]})),
    Case("GET", f"{V1}/keys/{{key_id}}", P.KEYS_READ, "object",
         lambda o: (f"{V1}/keys/{o.keys['svc']}", None)),
    Case("PATCH", f"{V1}/keys/{{key_id}}", P.KEYS_WRITE, "object",
         lambda o: (f"{V1}/keys/{o.keys['svc']}", {"name": "renamed"})),
    Case("POST", f"{V1}/keys/{{key_id}}/revoke", P.KEYS_WRITE, "object",
         lambda o: (f"{V1}/keys/{o.keys['svc']}/revoke", None)),
    Case("POST", f"{V1}/keys/{{key_id}}/rotate", P.KEYS_WRITE, "object",
         lambda o: (f"{V1}/keys/{o.keys['svc']}/rotate", {"grace_seconds": 60})),
    Case("DELETE", f"{V1}/keys/{{key_id}}", P.KEYS_WRITE, "object",
         lambda o: (f"{V1}/keys/{o.keys['svc']}", None)),
    # subscriptions (of app client, the consumer's own)
    Case("GET", f"{V1}/subscriptions", P.SUBSCRIPTIONS_READ, "list",
         lambda o: (f"{V1}/subscriptions?tenant_id={o.tenant}", None)),
    Case("POST", f"{V1}/subscriptions", P.SUBSCRIPTIONS_REQUEST, "create",
         lambda o: (f"{V1}/subscriptions", {"app_id": o.apps["client"], "model": "embed-small"})),
    Case("GET", f"{V1}/subscriptions/{{subscription_id}}", P.SUBSCRIPTIONS_READ, "object",
         lambda o: (f"{V1}/subscriptions/{o.subs['pending']}", None)),
    Case("POST", f"{V1}/subscriptions/{{subscription_id}}/approve", P.SUBSCRIPTIONS_DECIDE,
         "object", lambda o: (f"{V1}/subscriptions/{o.subs['pending']}/approve", {})),
    Case("POST", f"{V1}/subscriptions/{{subscription_id}}/reject", P.SUBSCRIPTIONS_DECIDE,
         "object", lambda o: (f"{V1}/subscriptions/{o.subs['pending']}/reject",
                              {"reason": "no"})),
    Case("POST", f"{V1}/subscriptions/{{subscription_id}}/revoke", P.SUBSCRIPTIONS_DECIDE,
         "object", lambda o: (f"{V1}/subscriptions/{o.subs['approved']}/revoke", None)),
    # audit
    Case("GET", f"{V1}/audit", P.AUDIT_READ, "list",
         lambda o: (f"{V1}/audit?tenant_id={o.tenant}", None)),
    # usage
    Case("GET", f"{V1}/usage", P.AUDIT_READ, "list",
         lambda o: (f"{V1}/usage?tenant_id={o.tenant}&group_by=key&from=0", None)),
    # request records
    Case("GET", f"{V1}/requests", P.AUDIT_READ, "list",
         lambda o: (f"{V1}/requests?tenant_id={o.tenant}", None)),
    Case("GET", f"{V1}/requests/{{request_id}}", P.AUDIT_READ, "object",
         lambda o: (f"{V1}/requests/{o.records['one']}", None)),
    # analytics
    *(Case("GET", f"{V1}/analytics/{route}", P.ANALYTICS_READ, "list",
           lambda o, r=route: (f"{V1}/analytics/{r}?tenant_id={o.tenant}&group_by=key&from=0"
                               "&bucket=all", None))
      for route in ("usage", "errors", "latency")),
    Case("GET", f"{V1}/analytics/top", P.ANALYTICS_READ, "list",
         lambda o: (f"{V1}/analytics/top?tenant_id={o.tenant}&group_by=key&from=0", None)),
    Case("GET", f"{V1}/analytics/guardrails", P.ANALYTICS_READ, "list",
         lambda o: (f"{V1}/analytics/guardrails?tenant_id={o.tenant}&from=0&bucket=all", None)),
    # deployments (the platform's own)
    Case("GET", f"{V1}/deployments", P.DEPLOYMENTS_READ, "list",
         lambda o: (f"{V1}/deployments", None)),
    # config (the platform's own; this test app has no config file: 409 once allowed)
    Case("GET", f"{V1}/config", P.CONFIG_READ, "object", lambda o: (f"{V1}/config", None)),
    Case("POST", f"{V1}/config/reload", P.CONFIG_WRITE, "object",
         lambda o: (f"{V1}/config/reload", None)),
]  # fmt: skip

ROLES = list(Role)
TENANT_ROLES = [role for role in Role if role is not Role.PLATFORM_ADMIN]


def allowed(role: Role, case: Case) -> bool:
    return case.permission is None or case.permission in PERMISSIONS[role]


async def call(env: Env, role: Role, case: Case, org: Org) -> Reply:
    url, body = case.build(org)
    return await env.client.call(case.method, url, env.world.key(role), body)


async def test_cases_cover_every_route() -> None:
    app = create_admin_app(None, None, list)  # type: ignore[arg-type]
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert routes == {(case.method, case.route) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.value)
async def test_role_matrix(env: Env, role: Role, case: Case) -> None:
    """In its own tenant (and own team/app), each role may do exactly what PERMISSIONS says."""
    before = await env.store.version()
    reply = await call(env, role, case, env.world.a)
    after = await env.store.version()
    if not allowed(role, case):
        assert reply.status == 403, reply.text
        assert reply.error["type"] == "permission_denied"
        assert case.permission is not None and case.permission.value in reply.error["message"]
        assert after == before
        return
    if case.route.startswith(f"{V1}/config"):  # allowed, but served from no config file
        assert reply.status == 409, reply.text
        assert reply.error["code"] == "no_config_file"
        return
    if case.id == "DELETE /tenants/{tenant_id}":  # allowed, but the tenant is not empty
        assert reply.status == 409, reply.text
        assert reply.error["type"] == "conflict"
        assert after == before
        return
    assert 200 <= reply.status < 300, reply.text
    if case.method == "GET":
        assert after == before
    else:
        assert after > before  # the change happened (every mutation bumps the version)
        newest = (await env.store.list_audit(limit=1)).items[0]  # ...and was audited
        me = (await env.client.call("GET", f"{V1}/me", env.world.key(role))).json
        assert (newest.actor, newest.request_id) == (me["name"], reply.headers["x-request-id"])


def _swap(value: Any, replacements: dict[str, str]) -> Any:
    text = json.dumps(value)
    for old, new in replacements.items():
        text = text.replace(old, new)
    return json.loads(text)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
@pytest.mark.parametrize("role", TENANT_ROLES, ids=lambda role: role.value)
async def test_other_tenant_is_invisible(env: Env, role: Role, case: Case) -> None:
    """Tenant A's callers against tenant B's objects: 403 (no permission) or exactly the 404
    a nonexistent id gets; lists name nothing of B; nothing changes. The refusal (and only
    it) is in the audit trail: a 403 in A's, a probe of B's object in the platform's."""
    world, store = env.world, env.store
    before = await store.version()
    audit_before = (await store.list_audit(limit=1)).total
    reply = await call(env, role, case, world.b)
    assert await store.version() == before
    trail = await store.list_audit(limit=5)
    added = trail.items[: trail.total - audit_before]
    assert [e.action for e in added] == (["refuse"] if reply.status in (403, 404) else [])
    if not allowed(role, case):
        assert reply.status == 403, reply.text
        assert added[0].tenant_id == world.a.tenant
        return
    if case.kind in ("me", "list"):
        assert reply.status == 200, reply.text
        assert not [i for i in world.b.ids() if i in reply.text]
        if case.kind == "list":
            assert all(item.get("tenant_id", world.a.tenant) == world.a.tenant
                       for item in reply.json["data"])  # fmt: skip
        return
    assert reply.status == 404, reply.text
    assert reply.error["type"] == "not_found"
    # The same request naming ids that never existed gets the same answer.
    fakes = {real: f"{real.split('_')[0]}_{n:016x}" for n, real in enumerate(world.b.ids())}
    url, body = case.build(world.b)
    replay = await env.client.call(
        case.method, _swap(url, fakes), world.key(role), _swap(body, fakes)
    )
    assert replay.status == 404
    assert _swap(replay.json, {v: k for k, v in fakes.items()}) == reply.json
    assert added[0].tenant_id is None  # the platform's trail only
    if case.kind == "object":  # a missing id is no probe (naming another tenant's id in a
        # new object's body is recorded either way: it is an attempt on another tenant)
        assert (await store.list_audit(limit=1)).total == audit_before + 1


# --- scope rules beyond the permission table ---------------------------------------------------


async def assert_refused(
    env: Env, role: Role, method: str, url: str, body: Any, status: int
) -> Reply:
    before = await env.store.version()
    reply = await env.client.call(method, url, env.world.key(role), body)
    assert reply.status == status, reply.text
    assert await env.store.version() == before
    return reply


async def test_developer_writes_only_its_own_team(env: Env) -> None:
    a, dev = env.world.a, Role.DEVELOPER
    far, svc = a.apps["far"], a.apps["svc"]
    for method, url, body in [
        ("PATCH", f"{V1}/apps/{far}", {"name": "mine"}),
        ("DELETE", f"{V1}/apps/{far}", None),
        ("POST", f"{V1}/apps", {"name": "x", "team_id": a.teams["other"]}),
        ("POST", f"{V1}/apps", {"name": "x"}),  # no team: not its team either
        ("PATCH", f"{V1}/apps/{svc}", {"team_id": a.teams["other"]}),
        ("POST", f"{V1}/keys", {"name": "k", "app_id": far}),
        ("POST", f"{V1}/keys", {"name": "k", "user_id": a.users["admin"]}),
        ("POST", f"{V1}/keys/{a.keys['admin']}/revoke", None),
        ("POST", f"{V1}/subscriptions", {"app_id": far, "model": "embed-small"}),
    ]:
        reply = await assert_refused(env, dev, method, url, body, 403)
        assert reply.error["code"] == "permission_denied"
    # ...while its own user keys and its team's apps are fine.
    own = await env.client.call(
        "POST", f"{V1}/keys", env.world.key(dev), {"name": "mine", "user_id": a.users["dev"]}
    )
    assert own.status == 201, own.text
    assert own.json["user_id"] == a.users["dev"]


async def test_consumer_sees_and_requests_only_its_own_app(env: Env) -> None:
    a, consumer = env.world.a, Role.CONSUMER
    svc = a.apps["svc"]
    neighbour = await env.store.request_subscription(
        Actor("cli:test"), app_id=svc, model="mock-gpt"
    )
    await assert_refused(env, consumer, "POST", f"{V1}/subscriptions",
                         {"app_id": svc, "model": "embed-small"}, 404)  # fmt: skip
    await assert_refused(env, consumer, "GET", f"{V1}/subscriptions/{neighbour.id}", None, 404)
    listed = await env.client.call("GET", f"{V1}/subscriptions", env.world.key(consumer))
    assert listed.json["total"] == 2
    assert {s["app_id"] for s in listed.json["data"]} == {a.apps["client"]}
    other = await env.client.call(
        "GET", f"{V1}/subscriptions?app_id={svc}", env.world.key(consumer)
    )
    assert other.json == {"data": [], "total": 0, "limit": 50, "offset": 0}
    # app_id defaults to the caller's own app
    own = await env.client.call(
        "POST", f"{V1}/subscriptions", env.world.key(consumer), {"model": "embed-small"}
    )
    assert own.status == 201, own.text
    assert own.json["app_id"] == a.apps["client"]
    assert own.json["status"] == "pending"


async def test_nobody_grants_above_itself(env: Env) -> None:
    a, admin = env.world.a, Role.TENANT_ADMIN
    for method, url, body in [
        ("POST", f"{V1}/users", {"email": "boss@x.example", "role": "platform_admin"}),
        ("PATCH", f"{V1}/users/{a.users['spare']}", {"role": "platform_admin"}),
        ("POST", f"{V1}/apps", {"name": "boss", "role": "platform_admin"}),
    ]:
        await assert_refused(env, admin, method, url, body, 403)
    await assert_refused(env, Role.DEVELOPER, "POST", f"{V1}/apps",
                         {"name": "boss", "team_id": a.teams["core"], "role": "tenant_admin"},
                         403)  # fmt: skip
    # A key narrows its owner's role, never widens it (a consumer app cannot get audit:read).
    reply = await assert_refused(env, admin, "POST", f"{V1}/keys",
                                 {"name": "k", "app_id": a.apps["client"], "role": "viewer"},
                                 400)  # fmt: skip
    assert reply.error["param"] == "role"


async def test_identities_above_the_caller_are_untouchable(env: Env) -> None:
    a = env.world.a
    boss = await env.store.create_user(
        Actor("cli:test"), email="boss@acme.example", role=Role.PLATFORM_ADMIN, tenant_id=a.tenant
    )
    for method, url, body in [
        ("PATCH", f"{V1}/users/{boss.id}", {"status": "disabled"}),
        ("DELETE", f"{V1}/users/{boss.id}", None),
        ("POST", f"{V1}/keys", {"name": "k", "user_id": boss.id}),
    ]:
        await assert_refused(env, Role.TENANT_ADMIN, method, url, body, 403)


async def test_platform_admin_acts_across_tenants(env: Env) -> None:
    b, root = env.world.b, env.world.platform_key
    apps = await env.client.call("GET", f"{V1}/apps?tenant_id={b.tenant}", root)
    assert {app["id"] for app in apps.json["data"]} == set(b.apps.values())
    tenants = await env.client.call("GET", f"{V1}/tenants", root)
    assert tenants.json["total"] == 2
    created = await env.client.call(
        "POST", f"{V1}/users", root, {"email": "ops@example.com", "role": "platform_admin"}
    )
    assert created.status == 201, created.text
    assert created.json["tenant_id"] is None


async def test_tenant_admin_cannot_change_its_tenant(env: Env) -> None:
    a = env.world.a
    for body in ({"status": "disabled"}, {"allowed_models": None}):
        await assert_refused(env, Role.TENANT_ADMIN, "PATCH", f"{V1}/tenants/{a.tenant}", body, 403)


async def test_disabled_tenant_locks_its_callers_out(env: Env) -> None:
    a, root = env.world.a, env.world.platform_key
    reply = await env.client.call("PATCH", f"{V1}/tenants/{a.tenant}", root, {"status": "disabled"})
    assert reply.status == 200 and reply.json["status"] == "disabled"
    locked = await env.client.call("GET", f"{V1}/me", env.world.key(Role.TENANT_ADMIN))
    assert locked.status == 403
    assert locked.error["type"] == "permission_denied"
    assert (await env.store.get_tenant(a.tenant)).status is Status.DISABLED


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-gateway-key",
        "Bearer gw-abcdefghijkm_" + "A" * 43,  # well-formed, unknown
    ],
    ids=["missing", "empty", "basic", "malformed", "unknown"],
)
async def test_unauthenticated_is_401(env: Env, authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization else {}
    for method, url in [("GET", f"{V1}/me"), ("DELETE", f"{V1}/tenants/{env.world.a.tenant}")]:
        reply = await env.client.call(method, url, headers=headers)
        assert reply.status == 401, reply.text
        assert reply.headers["www-authenticate"] == "Bearer"
        assert reply.error["type"] == "authentication_error"
        assert reply.error["code"] == "invalid_api_key"


async def test_revoked_and_expired_keys_are_401(env: Env) -> None:
    a, root = env.world.a, env.world.platform_key
    viewer = env.world.key(Role.VIEWER)
    assert (await env.client.call("GET", f"{V1}/me", viewer)).status == 200
    revoked = await env.client.call("POST", f"{V1}/keys/{a.keys['viewer']}/revoke", root)
    assert revoked.status == 200 and revoked.json["revoked_at"] is not None
    assert (await env.client.call("GET", f"{V1}/me", viewer)).status == 401
    created = await env.client.call(
        "POST", f"{V1}/keys", root,
        {"name": "brief", "user_id": a.users["viewer"], "expires_at": time.time() + 60},
    )  # fmt: skip
    assert created.status == 201, created.text
    assert (await env.client.call("GET", f"{V1}/me", created.json["key"])).status == 200
    env.clock.advance(60)  # the authenticator's clock: a minute later, without waiting
    assert (await env.client.call("GET", f"{V1}/me", created.json["key"])).status == 401


async def test_objects_never_reference_another_tenants_team(env: Env) -> None:
    a, b, root = env.world.a, env.world.b, env.world.platform_key
    for method, url, body in [
        ("POST", f"{V1}/apps", {"tenant_id": a.tenant, "name": "x", "team_id": b.teams["core"]}),
        ("PATCH", f"{V1}/apps/{a.apps['svc']}", {"team_id": b.teams["core"]}),
        ("PATCH", f"{V1}/users/{a.users['spare']}", {"team_id": b.teams["core"]}),
    ]:
        before = await env.store.version()
        reply = await env.client.call(method, url, root, body)
        assert reply.status == 400, reply.text
        assert reply.error["param"] == "team_id"
        assert await env.store.version() == before

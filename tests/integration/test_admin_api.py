"""The admin REST API over real HTTP (uvicorn on loopback): CRUD, lists, keys,
subscriptions, the audit trail, error envelopes, request ids, docs; one PostgreSQL run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from gatewise.admin.app import create_admin_app
from gatewise.identity.keys import hash_key
from gatewise.identity.records import Actor, Status
from gatewise.identity.roles import Role
from gatewise.store.identity import IdentityStore
from tests.integration import admin_support as support
from tests.integration.admin_support import AdminClient, Env, StoreHolder, serve, using
from tests.integration.pg import Backend

template, server, env = support.template, support.server, support.env
pytestmark = pytest.mark.asyncio(loop_scope="module")
V1 = "/admin/v1"


def ok(reply: support.Reply, status: int = 200) -> Any:
    assert reply.status == status, reply.text
    return reply.json if reply.text else None


async def test_me_describes_the_caller(env: Env) -> None:
    a = env.world.a
    me = ok(await env.client.call("GET", f"{V1}/me", env.world.key(Role.DEVELOPER)))
    assert me["kind"] == "key"
    assert me["name"] == f"key:{a.keys['dev']}"
    assert me["role"] == "developer"
    assert (me["tenant_id"], me["team_id"]) == (a.tenant, a.teams["core"])
    assert me["user_id"] == a.users["dev"] and me["app_id"] is None
    assert "apps:write" in me["permissions"] and "teams:write" not in me["permissions"]


async def test_tenants_crud_with_pagination_and_filters(env: Env) -> None:
    c, root = env.client, env.world.platform_key
    for name in ("c-one", "c-two", "c-three"):
        ok(await c.call("POST", f"{V1}/tenants", root, {"name": name}), 201)
    first = ok(await c.call("GET", f"{V1}/tenants", root, params={"limit": 2}))
    assert (first["total"], len(first["data"]), first["limit"], first["offset"]) == (5, 2, 2, 0)
    last = ok(await c.call("GET", f"{V1}/tenants", root, params={"limit": 2, "offset": 4}))
    assert [t["name"] for t in last["data"]] == ["c-three"]  # created_at order
    by_name = ok(await c.call("GET", f"{V1}/tenants", root, params={"name": "c-two"}))
    assert by_name["total"] == 1
    tenant = by_name["data"][0]

    changed = ok(
        await c.call(
            "PATCH",
            f"{V1}/tenants/{tenant['id']}",
            root,
            {"display_name": "Two", "allowed_models": ["gpt-4o*"], "status": "disabled"},
        )
    )
    assert (changed["display_name"], changed["allowed_models"], changed["status"]) == (
        "Two",
        ["gpt-4o*"],
        "disabled",
    )
    cleared = ok(
        await c.call("PATCH", f"{V1}/tenants/{tenant['id']}", root, {"allowed_models": None})
    )
    assert cleared["allowed_models"] is None and cleared["display_name"] == "Two"
    disabled = ok(await c.call("GET", f"{V1}/tenants", root, params={"status": "disabled"}))
    assert [t["id"] for t in disabled["data"]] == [tenant["id"]]

    ok(await c.call("DELETE", f"{V1}/tenants/{tenant['id']}", root), 204)
    gone = await c.call("GET", f"{V1}/tenants/{tenant['id']}", root)
    assert gone.status == 404 and gone.error["type"] == "not_found"
    busy = await c.call("DELETE", f"{V1}/tenants/{env.world.a.tenant}", root)
    assert busy.status == 409 and busy.error["type"] == "conflict"
    taken = await c.call("POST", f"{V1}/tenants", root, {"name": "c-one"})
    assert taken.status == 409 and taken.error["param"] == "name"
    bad = await c.call("POST", f"{V1}/tenants", root, {"name": "Not A Slug"})
    assert bad.status == 400 and bad.error["param"] == "name"


async def test_teams_apps_users_crud_as_tenant_admin(env: Env) -> None:
    a, c, key = env.world.a, env.client, env.world.key(Role.TENANT_ADMIN)
    team = ok(await c.call("POST", f"{V1}/teams", key, {"name": "data"}), 201)
    assert team["tenant_id"] == a.tenant  # defaults to the caller's tenant
    teams = ok(await c.call("GET", f"{V1}/teams", key, params={"limit": 1}))
    assert teams["total"] == 4 and len(teams["data"]) == 1
    renamed = ok(await c.call("PATCH", f"{V1}/teams/{team['id']}", key, {"name": "analytics"}))
    assert renamed["name"] == "analytics"

    app = ok(
        await c.call(
            "POST",
            f"{V1}/apps",
            key,
            {
                "name": "etl",
                "team_id": team["id"],
                "role": "developer",
                "allowed_models": ["mock-gpt"],
            },
        ),
        201,
    )
    assert (app["tenant_id"], app["role"], app["status"]) == (a.tenant, "developer", "active")
    in_team = ok(await c.call("GET", f"{V1}/apps", key, params={"team_id": team["id"]}))
    assert [x["id"] for x in in_team["data"]] == [app["id"]]
    moved = ok(await c.call("PATCH", f"{V1}/apps/{app['id']}", key, {"team_id": a.teams["core"]}))
    assert moved["team_id"] == a.teams["core"]
    assert ok(await c.call("GET", f"{V1}/apps", key))["total"] == 4

    user = ok(
        await c.call("POST", f"{V1}/users", key, {"email": "Eve@Acme.example", "role": "viewer",
                                                   "team_id": team["id"]}),
        201,
    )  # fmt: skip
    assert (user["email"], user["tenant_id"], user["team_id"]) == (
        "eve@acme.example",
        a.tenant,
        team["id"],
    )
    promoted = ok(await c.call("PATCH", f"{V1}/users/{user['id']}", key, {"role": "developer"}))
    assert promoted["role"] == "developer"
    viewers = ok(await c.call("GET", f"{V1}/users", key, params={"role": "viewer"}))
    assert [u["id"] for u in viewers["data"]] == [a.users["viewer"]]

    made = ok(await c.call("POST", f"{V1}/keys", key, {"name": "eve", "user_id": user["id"]}), 201)
    busy = await c.call("DELETE", f"{V1}/teams/{team['id']}", key)
    assert busy.status == 409  # the user is still in it
    ok(await c.call("DELETE", f"{V1}/users/{user['id']}", key), 204)
    assert (await env.store.get_key(made["id"])).revoked_at is not None  # its keys went with it
    ok(await c.call("DELETE", f"{V1}/teams/{team['id']}", key), 204)
    ok(await c.call("DELETE", f"{V1}/apps/{app['id']}", key), 204)
    assert (await c.call("GET", f"{V1}/apps/{app['id']}", key)).status == 404


async def test_key_plaintext_is_shown_once_and_never_its_hash(env: Env) -> None:
    a, c, key = env.world.a, env.client, env.world.key(Role.TENANT_ADMIN)
    created = await c.call(
        "POST", f"{V1}/keys", key, {"name": "deploy", "app_id": a.apps["svc"], "tags": ["prod"]}
    )
    record = ok(created, 201)
    plaintext = record["key"]
    assert plaintext.startswith(record["prefix"] + "_") and record["id"] == "key_" + plaintext[3:15]
    assert "key_hash" not in record
    digest = hash_key(plaintext).hex()

    seen = [
        await c.call("GET", f"{V1}/keys/{record['id']}", key),
        await c.call("GET", f"{V1}/keys", key, params={"app_id": a.apps["svc"]}),
        await c.call("GET", f"{V1}/audit", key, params={"object_id": record["id"]}),
    ]
    for reply in seen:
        assert reply.status == 200, reply.text
        assert plaintext not in reply.text and digest not in reply.text
        assert "key_hash" not in reply.text
    listed = seen[1].json
    assert {k["id"] for k in listed["data"]} == {a.keys["svc"], record["id"]}
    assert set(listed["data"][0]) == set(record) - {"key"}
    tagged = ok(await c.call("GET", f"{V1}/keys", key, params={"tag": "prod"}))
    assert [k["id"] for k in tagged["data"]] == [record["id"]]

    me = ok(await c.call("GET", f"{V1}/me", plaintext))  # the new key works
    assert me["name"] == f"key:{record['id']}" and me["app_id"] == a.apps["svc"]


async def test_key_update_rotate_revoke(env: Env) -> None:
    a, c, key = env.world.a, env.client, env.world.key(Role.TENANT_ADMIN)
    old = ok(await c.call("POST", f"{V1}/keys", key, {"name": "ci", "app_id": a.apps["svc"]}), 201)
    expiry = time.time() + 3600
    changed = ok(
        await c.call(
            "PATCH", f"{V1}/keys/{old['id']}", key,
            {"name": "ci-main", "allowed_models": ["mock-gpt"], "tags": ["x"], "expires_at": expiry},
        )
    )  # fmt: skip
    assert (changed["name"], changed["allowed_models"], changed["tags"]) == (
        "ci-main",
        ["mock-gpt"],
        ["x"],
    )
    assert changed["expires_at"] == pytest.approx(expiry)

    before = time.time()
    rotated = ok(
        await c.call("POST", f"{V1}/keys/{old['id']}/rotate", key, {"grace_seconds": 60}), 201
    )
    assert rotated["key"] != old["key"] and rotated["name"] == "ci-main"
    previous = ok(await c.call("GET", f"{V1}/keys/{old['id']}", key))
    assert previous["replaced_by"] == rotated["id"]
    assert before + 59 <= previous["expires_at"] <= time.time() + 60
    for plaintext in (old["key"], rotated["key"]):  # both work during the grace period
        assert (await c.call("GET", f"{V1}/me", plaintext)).status == 200

    again = ok(await c.call("POST", f"{V1}/keys/{rotated['id']}/rotate", key), 201)  # no body
    assert again["key"] not in (old["key"], rotated["key"])
    now = ok(
        await c.call("POST", f"{V1}/keys/{again['id']}/rotate", key, {"grace_seconds": 0}), 201
    )
    assert (await c.call("GET", f"{V1}/me", again["key"])).status == 401  # no grace
    assert (await c.call("GET", f"{V1}/me", now["key"])).status == 200

    revoked = ok(await c.call("POST", f"{V1}/keys/{now['id']}/revoke", key))
    assert revoked["revoked_at"] is not None
    twice = await c.call("POST", f"{V1}/keys/{now['id']}/revoke", key)
    assert twice.status == 409 and twice.error["type"] == "conflict"
    ok(await c.call("DELETE", f"{V1}/keys/{a.keys['svc']}", key), 204)
    live = ok(await c.call("GET", f"{V1}/keys", key, params={"app_id": a.apps["svc"]}))
    everything = ok(
        await c.call(
            "GET", f"{V1}/keys", key, params={"app_id": a.apps["svc"], "include_revoked": True}
        )
    )
    # Not revoked: the two rotated keys in their grace period and the one that just expired.
    assert {k["id"] for k in live["data"]} == {old["id"], rotated["id"], again["id"]}
    assert everything["total"] == 5


async def test_subscription_workflow(env: Env) -> None:
    a, c, key = env.world.a, env.client, env.world.key(Role.TENANT_ADMIN)
    svc = a.apps["svc"]
    sub = ok(
        await c.call("POST", f"{V1}/subscriptions", key, {"app_id": svc, "model": "gpt-4o-mini",
                                                          "note": "for the batch job"}),
        201,
    )  # fmt: skip
    assert (sub["status"], sub["note"], sub["requested_by"]) == (
        "pending",
        "for the batch job",
        f"key:{a.keys['admin']}",
    )
    dup = await c.call("POST", f"{V1}/subscriptions", key, {"app_id": svc, "model": "gpt-4o-mini"})
    assert dup.status == 409
    unknown = await c.call("POST", f"{V1}/subscriptions", key, {"app_id": svc, "model": "gpt-9"})
    assert unknown.status == 400
    assert (unknown.error["param"], unknown.error["code"]) == ("model", "model_not_found")

    approved = ok(
        await c.call("POST", f"{V1}/subscriptions/{sub['id']}/approve", key, {"reason": "ok"})
    )
    assert (approved["status"], approved["reason"]) == ("approved", "ok")
    assert approved["decided_by"] == f"key:{a.keys['admin']}" and approved["decided_at"]
    assert (await c.call("POST", f"{V1}/subscriptions/{sub['id']}/reject", key)).status == 409
    assert (svc, "gpt-4o-mini") in (await env.store.snapshot()).approved
    revoked = ok(await c.call("POST", f"{V1}/subscriptions/{sub['id']}/revoke", key))
    assert revoked["status"] == "revoked"

    rejected = ok(await c.call("POST", f"{V1}/subscriptions/{a.subs['pending']}/reject", key))
    assert rejected["status"] == "rejected" and rejected["reason"] is None
    by_status = ok(await c.call("GET", f"{V1}/subscriptions", key, params={"status": "revoked"}))
    assert [s["id"] for s in by_status["data"]] == [sub["id"]]
    for_app = ok(await c.call("GET", f"{V1}/subscriptions", key, params={"app_id": svc}))
    assert for_app["total"] == 1


async def test_every_change_is_audited_with_its_request_id(env: Env) -> None:
    a, c, key = env.world.a, env.client, env.world.key(Role.TENANT_ADMIN)
    start = time.time()
    created = await c.call(
        "POST", f"{V1}/apps", key, {"name": "audited"}, headers={"x-request-id": "req-audit-1"}
    )
    app = ok(created, 201)
    assert created.headers["x-request-id"] == "req-audit-1"
    ok(await c.call("PATCH", f"{V1}/apps/{app['id']}", key, {"status": "disabled"},
                    headers={"x-request-id": "req-audit-2"}))  # fmt: skip
    entries = ok(
        await c.call("GET", f"{V1}/audit", env.world.key(Role.VIEWER),
                     params={"object_type": "app", "object_id": app["id"]})
    )["data"]  # fmt: skip
    assert [(e["action"], e["request_id"]) for e in entries] == [
        ("update", "req-audit-2"),  # newest first
        ("create", "req-audit-1"),
    ]
    update = entries[0]
    assert update["actor"] == f"key:{a.keys['admin']}" and update["actor_tenant_id"] == a.tenant
    assert update["before"]["status"] == "active" and update["after"]["status"] == "disabled"
    assert update["tenant_id"] == a.tenant and update["at"] >= start

    since = ok(await c.call("GET", f"{V1}/audit", key, params={"since": start}))
    assert since["total"] == 2
    until = ok(await c.call("GET", f"{V1}/audit", key, params={"until": start}))
    assert until["total"] > 0 and all(e["at"] < start for e in until["data"])
    by_actor = ok(
        await c.call("GET", f"{V1}/audit", key, params={"actor": f"key:{a.keys['admin']}"})
    )
    assert by_actor["total"] == 2
    # A tenant's viewer reads its tenant's trail only; the platform admin reads every tenant's.
    mine = ok(await c.call("GET", f"{V1}/audit", key, params={"limit": 200}))
    assert {e["tenant_id"] for e in mine["data"]} == {a.tenant}
    everyone = ok(await c.call("GET", f"{V1}/audit", env.world.platform_key, params={"limit": 200}))
    assert {a.tenant, env.world.b.tenant} <= {e["tenant_id"] for e in everyone["data"]}


async def test_request_ids_are_echoed_or_made(env: Env) -> None:
    key = env.world.key(Role.VIEWER)
    made = await env.client.call("GET", f"{V1}/me", key)
    assert made.headers["x-request-id"].startswith("req_")
    bad = await env.client.call("GET", f"{V1}/me", key, headers={"x-request-id": "bad id\t!"})
    assert bad.headers["x-request-id"].startswith("req_")
    failed = await env.client.call("GET", f"{V1}/me", headers={"x-request-id": "req-401"})
    assert failed.status == 401 and failed.headers["x-request-id"] == "req-401"


@pytest.mark.parametrize(
    ("method", "path", "body", "param", "code"),
    [
        ("POST", "/teams", {"name": "x", "colour": "red"}, "colour", "unknown"),
        ("POST", "/users", {"email": "a@b.c"}, "role", "missing"),
        ("POST", "/users", {"email": "a@b.c", "role": "emperor"}, "role", "invalid_value"),
        ("PATCH", "/apps/{app}", {"status": None}, "status", "invalid_value"),
        ("POST", "/keys", {"name": "k", "app_id": "{app}", "tags": "ci"}, "tags", "invalid_value"),
        ("POST", "/keys", {"name": "k"}, "app_id", "invalid_value"),
        ("POST", "/keys/{key}/rotate", {"grace_seconds": -1}, "grace_seconds", "invalid_value"),
        ("GET", "/apps?limit=0", None, "limit", "invalid_value"),
        ("GET", "/apps?limit=201", None, "limit", "invalid_value"),
        ("GET", "/apps?offset=-1", None, "offset", "invalid_value"),
        ("GET", "/audit?since=yesterday", None, "since", "invalid_value"),
        ("POST", "/teams", [1, 2], None, "invalid_value"),
    ],
)
async def test_invalid_input_is_400_naming_the_field(
    env: Env, method: str, path: str, body: Any, param: str | None, code: str
) -> None:
    a = env.world.a
    path = path.replace("{app}", a.apps["svc"]).replace("{key}", a.keys["svc"])
    body = json.loads(json.dumps(body).replace("{app}", a.apps["svc"]))
    before = await env.store.version()
    reply = await env.client.call(method, V1 + path, env.world.key(Role.TENANT_ADMIN), body)
    assert reply.status == 400, reply.text
    error = reply.error
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    if param:
        assert param in error["message"]
    assert await env.store.version() == before


async def test_malformed_json_and_unknown_routes(env: Env) -> None:
    key = env.world.key(Role.TENANT_ADMIN)
    broken = await env.client.call("POST", f"{V1}/teams", key, raw=b'{"name": ')
    assert broken.status == 400 and broken.error["code"] == "invalid_json"
    missing = await env.client.call("GET", f"{V1}/widgets", key)
    assert missing.status == 404 and missing.error["type"] == "not_found"
    wrong = await env.client.call("PUT", f"{V1}/teams", key, {})
    assert wrong.status == 405 and wrong.error["code"] == "method_not_allowed"


async def test_docs_and_openapi(env: Env) -> None:
    docs = await env.client.call("GET", "/admin/docs")
    assert docs.status == 200 and "text/html" in docs.headers["content-type"]
    assert "/admin/openapi.json" in docs.text
    schema = ok(await env.client.call("GET", "/admin/openapi.json", env.world.key(Role.VIEWER)))
    assert {f"{V1}/me", f"{V1}/audit", f"{V1}/usage", f"{V1}/deployments"} <= set(schema["paths"])
    operations = [op for item in schema["paths"].values() for op in item.values()]
    assert len(operations) == 46
    assert all("422" not in op["responses"] for op in operations)
    assert schema["paths"][f"{V1}/teams"]["post"]["responses"]["400"]["content"]
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    key_out = schema["components"]["schemas"]["KeyOut"]["properties"]
    assert "key_hash" not in key_out and "epoch" in key_out["created_at"]["description"]


async def test_unexpected_failure_is_a_500_without_a_trace() -> None:
    async def broken(headers: dict[bytes, bytes]) -> Any:
        raise RuntimeError("database password is hunter2")

    app = create_admin_app(None, broken, list)  # type: ignore[arg-type]
    async with serve(app) as client:
        reply = await client.call("GET", f"{V1}/me", "gw-anything", headers={"x-request-id": "r-1"})
    assert reply.status == 500
    assert reply.error["type"] == "server_error"
    assert "hunter2" not in reply.text and "Traceback" not in reply.text
    assert reply.headers["x-request-id"] == "r-1"


async def test_postgresql_smoke(server: tuple[StoreHolder, AdminClient], tmp_path: Path) -> None:
    """The same API over PostgreSQL: create the tree, a key, list it, read the audit."""
    holder, client = server
    backend = Backend("postgresql", tmp_path)
    await backend.setup()
    try:
        async with using(holder, backend.database(), migrate=True) as store:
            await _smoke(store, client)
    finally:
        await backend.teardown()


async def _smoke(store: IdentityStore, c: AdminClient) -> None:
    actor = Actor("test:pg")
    root = await store.create_user(actor, email="root@pg.example", role=Role.PLATFORM_ADMIN)
    _, key = await store.create_key(actor, name="root", user_id=root.id)
    tenant = ok(await c.call("POST", f"{V1}/tenants", key, {"name": "pg"}), 201)
    team = ok(
        await c.call("POST", f"{V1}/teams", key, {"tenant_id": tenant["id"], "name": "t"}), 201
    )
    app = ok(await c.call("POST", f"{V1}/apps", key, {"name": "a", "team_id": team["id"]}), 201)
    assert app["tenant_id"] == tenant["id"]  # from its team
    made = ok(await c.call("POST", f"{V1}/keys", key, {"name": "k", "app_id": app["id"],
                                                      "tags": ["pg"]}), 201)  # fmt: skip
    listed = ok(
        await c.call("GET", f"{V1}/keys", key, params={"tenant_id": tenant["id"], "tag": "pg"})
    )
    assert [k["id"] for k in listed["data"]] == [made["id"]]
    audit = ok(await c.call("GET", f"{V1}/audit", key, params={"tenant_id": tenant["id"]}))
    assert [e["object_type"] for e in audit["data"]] == ["key", "app", "team", "tenant"]
    assert (await c.call("GET", f"{V1}/me", made["key"])).status == 200
    assert (await store.get_tenant(tenant["id"])).status is Status.ACTIVE

"""The admin API inside a real gateway (SQLite and PostgreSQL): a change made through it
holds on that gateway the moment the answer arrives, and with ``server.access_log`` every
admin request is one access-log line that names the caller, never its credential.

The identity poll is set to 10 s here, so nothing but the admin API's own refresh can
make a new key work (or a revoked one stop) on the next request.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from gatewise.identity.roles import Role
from gatewise.store.identity import IdentityStore
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from tests.e2e.test_identity_replicas import admin_database
from tests.identity_seed import ACTOR, with_store
from tests.integration.pg import require_postgres
from tests.rawhttp import Reply, request

HELLO = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Gateway:
    running: RunningGateway
    root: str  # a platform admin's key
    app_id: str

    def admin(self, method: str, path: str, body: dict[str, object] | None = None) -> Reply:
        headers = {"authorization": f"Bearer {self.root}", "x-request-id": "req-e2e"}
        return request(method, self.running.url + path, body, headers=headers)

    def chat(self, key: str) -> int:
        headers = {"authorization": f"Bearer {key}"}
        return request("POST", self.running.url + "/v1/chat/completions", HELLO, headers).status


async def seed(store: IdentityStore) -> tuple[str, str]:
    tenant = await store.create_tenant(ACTOR, name="acme")
    app = await store.create_app(ACTOR, tenant_id=tenant.id, name="svc")
    root = await store.create_user(ACTOR, email="root@ops.test", role=Role.PLATFORM_ADMIN)
    _, key = await store.create_key(ACTOR, name="root", user_id=root.id)
    return key, app.id


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("admin-gateway")
    database = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{folder}/gatewise.db"
    else:
        server = require_postgres()
        database = f"gw_admin_{uuid.uuid4().hex[:10]}"
        admin_database(server, f'CREATE DATABASE "{database}"')
        url = server.rsplit("/", 1)[0] + "/" + database
    try:
        root, app_id = with_store(url, seed)
        config = {
            "server": {"access_log": True},
            "auth": {"mode": "keys", "refresh_seconds": 10},
            "store": {"url": url},
            "providers": {"mock": {"type": "mock"}},
            "models": [
                {"name": "mock-gpt", "deployments": [{"provider": "mock", "model": "mock-gpt"}]}
            ],
        }
        with run_gateway_in_thread(config) as running:
            yield Gateway(running, root, app_id)
    finally:
        if database is not None:
            admin_database(server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_a_new_key_works_at_once_on_the_gateway_that_made_it(gateway: Gateway) -> None:
    for n in range(25):
        made = gateway.admin("POST", "/admin/v1/keys", {"name": f"k{n}", "app_id": gateway.app_id})
        assert made.status == 201, made.body
        assert gateway.chat(made.json["key"]) == 200, f"key {n} refused"


def test_a_revoked_key_stops_at_once_on_the_gateway_that_revoked_it(gateway: Gateway) -> None:
    made = gateway.admin("POST", "/admin/v1/keys", {"name": "doomed", "app_id": gateway.app_id})
    key = made.json["key"]
    assert gateway.chat(key) == 200
    assert gateway.admin("POST", f"/admin/v1/keys/{made.json['id']}/revoke").status == 200
    assert gateway.chat(key) == 401


def test_every_admin_request_is_an_access_log_line(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gatewise")
    made = gateway.admin("POST", "/admin/v1/keys", {"name": "logged", "app_id": gateway.app_id})
    secret = made.json["key"]
    me = request(
        "GET", gateway.running.url + "/admin/v1/me", headers={"authorization": f"Bearer {secret}"}
    )
    assert me.status == 200
    denied = request(
        "GET", gateway.running.url + "/admin/v1/tenants",
        headers={"authorization": f"Bearer {secret}", "x-request-id": "req-denied"},
    )  # fmt: skip
    assert denied.status == 403
    unknown = request("GET", gateway.running.url + "/admin/v1/me")
    assert unknown.status == 401

    lines = [r for r in caplog.records if r.name == "gatewise.admin" and hasattr(r, "status")]
    seen = [(r.method, r.path, r.status) for r in lines]  # type: ignore[attr-defined]
    assert seen == [
        ("POST", "/admin/v1/keys", 201),
        ("GET", "/admin/v1/me", 200),
        ("GET", "/admin/v1/tenants", 403),
        ("GET", "/admin/v1/me", 401),
    ]
    first, _, third, fourth = lines
    assert first.caller.startswith("key:key_") and first.request_id == "req-e2e"  # type: ignore[attr-defined]
    assert third.caller == f"key:{made.json['id']}" and third.request_id == "req-denied"  # type: ignore[attr-defined]
    assert fourth.caller is None  # type: ignore[attr-defined]
    assert all(r.duration_ms >= 0 for r in lines)  # type: ignore[attr-defined]
    everything = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    for plaintext in (secret, gateway.root):
        assert plaintext.split("_", 1)[1] not in everything


def test_the_docs_need_no_cdn_and_the_schema_a_key(gateway: Gateway) -> None:
    page = request("GET", gateway.running.url + "/admin/docs")
    assert page.status == 200 and b"://" not in page.body
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert request("GET", gateway.running.url + "/admin/openapi.json").status == 401
    assert gateway.admin("GET", "/admin/openapi.json").status == 200

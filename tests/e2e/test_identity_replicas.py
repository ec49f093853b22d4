"""Two gateway processes on one PostgreSQL: identity changes reach every replica in a second.

The replicas share nothing but the records database (the shared mode): a key
revoked through one replica's admin API must stop working on the other within
one second, a key created there must start working on the other, and neither
replica may ever write a key's plaintext to its log.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from gatewise.identity.roles import Role
from gatewise.store.engine import make_engine
from gatewise.store.identity import IdentityStore
from tests.e2e.gateways import serve_gateways
from tests.identity_seed import ACTOR, with_store
from tests.integration.pg import require_postgres
from tests.rawhttp import request

HELLO = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Replicas:
    urls: list[str]
    logs: list[Path]
    keys: dict[str, str]
    ids: dict[str, str]


def admin_database(url: str, statement: str) -> None:
    async def run() -> None:
        engine = make_engine(url)
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sa.text(statement))
        await engine.dispose()

    asyncio.run(run())


async def seed(store: IdentityStore) -> tuple[dict[str, str], dict[str, str]]:
    tenant = await store.create_tenant(ACTOR, name="acme")
    app = await store.create_app(ACTOR, tenant_id=tenant.id, name="svc")
    admin = await store.create_user(ACTOR, email="root@ops.test", role=Role.PLATFORM_ADMIN)
    key, plaintext = await store.create_key(ACTOR, name="svc", app_id=app.id)
    _, admin_key = await store.create_key(ACTOR, name="root", user_id=admin.id)
    return {"svc": plaintext, "admin": admin_key}, {"svc": key.id, "app": app.id}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    server = require_postgres()
    name = f"gw_replicas_{uuid.uuid4().hex[:10]}"
    admin_database(server, f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + "/" + name
    folder = tmp_path_factory.mktemp("replicas")
    try:
        keys, ids = with_store(url, seed)
        config = folder / "gateway.yaml"
        config.write_text(
            f"""
server: {{access_log: true, log_level: debug}}
auth: {{mode: keys}}
store: {{url: "{url}"}}
providers:
  mock: {{type: mock}}
models:
  - name: mock-gpt
    deployments: [{{provider: mock, model: mock-gpt}}]
"""
        )
        with serve_gateways(config, 2) as served:
            yield Replicas(served.urls, served.logs, keys, ids)
    finally:
        admin_database(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def chat_status(url: str, key: str) -> int:
    headers = {"authorization": f"Bearer {key}"}
    return request("POST", url + "/v1/chat/completions", HELLO, headers=headers).status


def seconds_until(check: Callable[[], bool], within: float) -> float:
    start = time.perf_counter()
    while not check():
        elapsed = time.perf_counter() - start
        assert elapsed < within, f"not seen within {within} s"
        time.sleep(0.01)
    return time.perf_counter() - start


def admin(replicas: Replicas, method: str, path: str, body: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    headers = {"authorization": f"Bearer {replicas.keys['admin']}"}
    return request(method, replicas.urls[0] + path, body, headers=headers)


def test_a_key_created_on_one_replica_works_on_the_other(replicas: Replicas) -> None:
    created = admin(
        replicas, "POST", "/admin/v1/keys", {"name": "new", "app_id": replicas.ids["app"]}
    )
    assert created.status == 201, created.body
    key = created.json["key"]
    replicas.keys["new"] = key
    took = seconds_until(lambda: chat_status(replicas.urls[1], key) == 200, within=1.0)
    print(f"new key usable on the other replica after {took * 1000:.0f} ms")


def test_a_key_revoked_on_one_replica_stops_on_the_other_within_a_second(
    replicas: Replicas,
) -> None:
    key = replicas.keys["svc"]
    assert [chat_status(url, key) for url in replicas.urls] == [200, 200]
    revoked = admin(replicas, "POST", f"/admin/v1/keys/{replicas.ids['svc']}/revoke")
    assert revoked.status == 200, revoked.body
    took = seconds_until(lambda: chat_status(replicas.urls[1], key) == 401, within=1.0)
    print(f"revoked key refused by the other replica after {took * 1000:.0f} ms")
    # The replica that took the change polls on its own schedule too: within the same second.
    seconds_until(lambda: chat_status(replicas.urls[0], key) == 401, within=1.0 - took)


def test_no_replica_logs_a_key(replicas: Replicas) -> None:
    # Traffic of its own: a fresh key used on both replicas (not whatever earlier tests sent).
    created = admin(
        replicas, "POST", "/admin/v1/keys", {"name": "logged", "app_id": replicas.ids["app"]}
    )
    assert created.status == 201, created.body
    key, caller = created.json["key"], f'"caller":"key:{created.json["id"]}"'
    replicas.keys["logged"] = key
    for url in replicas.urls:  # each replica learns of the key on its next poll
        seconds_until(lambda url=url: chat_status(url, key) == 200, within=5.0)
    listed = admin(replicas, "GET", "/admin/v1/keys?include_revoked=true")
    assert listed.status == 200
    for plaintext in replicas.keys.values():
        assert plaintext.split("_", 1)[1] not in listed.body.decode()
    for log in replicas.logs:
        # The access log names callers by key id (its line may land just after the reply) ...
        seconds_until(lambda log=log: caller in log.read_text(), within=5.0)
        text = log.read_text()
        for plaintext in replicas.keys.values():
            assert plaintext.split("_", 1)[1] not in text  # ... and never by their secret

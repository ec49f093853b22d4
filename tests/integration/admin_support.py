"""Test support for the admin API: a seeded two-tenant world, a key authenticator over the
store's snapshot, and the admin app served by uvicorn on loopback.

Requests are authenticated by the gateway's real ``Authenticator`` (``snapshot_authenticate``). The world is seeded once
into a template SQLite file and cloned (SQLite backup API) for every test, so each test
starts from the same state in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import uvicorn

from gatewise.admin.app import create_admin_app
from gatewise.admin.authz import Authenticate
from gatewise.core.context import new_request_id
from gatewise.identity.cache import IdentityCache
from gatewise.identity.directory import Directory
from gatewise.identity.principal import Principal
from gatewise.identity.records import Actor
from gatewise.identity.roles import Role
from gatewise.policies.auth import Authenticator
from gatewise.store.engine import Database
from gatewise.store.identity import IdentityStore
from gatewise.store.tables import request_records
from tests.integration.pg import Backend

MODELS = ["gpt-4o-mini", "mock-gpt", "embed-small"]
SEEDER = Actor(name="cli:seed")

#: Which seeded key of tenant A each tenant role authenticates with.
ROLE_KEYS = {
    Role.TENANT_ADMIN: "admin",
    Role.DEVELOPER: "dev",
    Role.VIEWER: "viewer",
    Role.CONSUMER: "client",
}


# --- the seeded world ---------------------------------------------------------------------------


@dataclass
class Org:
    """One tenant's seeded objects, by nickname. ``secrets`` holds key plaintexts by nickname.

    Teams: core (the developer's; apps svc and client), other (app far), empty.
    Users: admin, dev (team core), viewer, spare (a consumer). Keys: one per user but spare,
    svc (app svc) and client (app client, a consumer). Subscriptions of app client:
    pending (gpt-4o-mini) and approved (mock-gpt).
    """

    tenant: str
    teams: dict[str, str] = field(default_factory=dict)
    apps: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    subs: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    records: dict[str, str] = field(default_factory=dict)

    def ids(self) -> list[str]:
        """Every id of this tenant's objects (the tenant's own first)."""
        groups = (self.teams, self.apps, self.users, self.keys, self.subs, self.records)
        return [self.tenant, *(i for group in groups for i in group.values())]


@dataclass
class World:
    """Two tenants built alike (``a`` holds the callers, ``b`` is the other tenant) and a
    platform admin outside both."""

    a: Org
    b: Org
    platform_user: str
    platform_key_id: str
    platform_key: str

    def key(self, role: Role) -> str:
        """The plaintext key a caller of ``role`` in tenant A presents."""
        if role is Role.PLATFORM_ADMIN:
            return self.platform_key
        return self.a.secrets[ROLE_KEYS[role]]


async def seed_org(store: IdentityStore, name: str) -> Org:
    tenant = await store.create_tenant(SEEDER, name=name, display_name=name.title())
    org = Org(tenant=tenant.id)
    for team in ("core", "other", "empty"):
        org.teams[team] = (await store.create_team(SEEDER, tenant_id=tenant.id, name=team)).id
    core = org.teams["core"]
    for app, team_id, role in (
        ("svc", core, Role.DEVELOPER),
        ("far", org.teams["other"], Role.DEVELOPER),
        ("client", core, Role.CONSUMER),
    ):
        made = await store.create_app(
            SEEDER, tenant_id=tenant.id, name=app, team_id=team_id, role=role
        )
        org.apps[app] = made.id
    members: list[tuple[str, Role, str | None]] = [
        ("admin", Role.TENANT_ADMIN, None),
        ("dev", Role.DEVELOPER, core),
        ("viewer", Role.VIEWER, None),
        ("spare", Role.CONSUMER, None),
    ]
    for user, role, member_team in members:
        made_user = await store.create_user(
            SEEDER, email=f"{user}@{name}.example", role=role, tenant_id=tenant.id,
            team_id=member_team,
        )  # fmt: skip
        org.users[user] = made_user.id
    for nickname in ("admin", "dev", "viewer"):
        key, plaintext = await store.create_key(SEEDER, name=nickname, user_id=org.users[nickname])
        org.keys[nickname], org.secrets[nickname] = key.id, plaintext
    for nickname in ("svc", "client"):
        key, plaintext = await store.create_key(SEEDER, name=nickname, app_id=org.apps[nickname])
        org.keys[nickname], org.secrets[nickname] = key.id, plaintext
    client = org.apps["client"]
    pending = await store.request_subscription(SEEDER, app_id=client, model="gpt-4o-mini")
    approved = await store.request_subscription(SEEDER, app_id=client, model="mock-gpt")
    await store.approve_subscription(SEEDER, approved.id)
    org.subs.update(pending=pending.id, approved=approved.id)
    org.records["one"] = await seed_request_record(store.database, tenant.id, org.keys["svc"])
    return org


async def seed_request_record(database: Database, tenant_id: str, key_id: str) -> str:
    """One request record of the tenant's (the writer's rows, inserted directly)."""
    record_id = new_request_id()
    async with database.engine.begin() as connection:
        await connection.execute(
            request_records.insert().values(
                id=record_id, at=time.time(), tenant_id=tenant_id, key_id=key_id,
                front_door="openai", operation="chat", method="POST",
                path="/v1/chat/completions", model="mock-gpt", stream=False, status=200,
                duration_ms=12.5, prompt_tokens=3, completion_tokens=5, cached_tokens=0,
                usage_estimated=False, privacy="off",
            )
        )  # fmt: skip
    return record_id


async def seed_world(store: IdentityStore) -> World:
    a = await seed_org(store, "acme")
    b = await seed_org(store, "globex")
    root = await store.create_user(SEEDER, email="root@example.com", role=Role.PLATFORM_ADMIN)
    key, plaintext = await store.create_key(SEEDER, name="root", user_id=root.id)
    return World(a=a, b=b, platform_user=root.id, platform_key_id=key.id, platform_key=plaintext)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def build_template(path: Path) -> World:
    """Migrate and seed the template file, on a loop of its own in another thread (callable
    from inside or outside a running loop)."""

    async def run() -> World:
        database = Database(sqlite_url(path))
        await database.start()
        try:
            return await seed_world(IdentityStore(database))
        finally:
            await database.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def clone(template: Path, target: Path) -> None:
    """Copy the template database into ``target`` with SQLite's backup API."""
    source, copy = sqlite3.connect(template), sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()


@dataclass(frozen=True)
class Template:
    path: Path
    world: World


_TEMPLATES: dict[str, Template] = {}


# --- authentication over the snapshot -----------------------------------------------------------


class WallClock:
    """``time.time`` that a test can move forward, to see keys expire without waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def snapshot_authenticate(store: IdentityStore, clock: WallClock) -> Authenticate:
    """The gateway's real ``Authenticator``, with its directory brought up to date before
    every request (the gateway polls instead; tests must not wait for the poll)."""
    cache = IdentityCache(store, poll_seconds=3600)
    authenticator = Authenticator(cache, None, clock=clock)

    async def authenticate(headers: dict[bytes, bytes]) -> Principal:
        if cache._directory is None:
            cache._directory = Directory(await store.snapshot())
        await cache.refresh()
        return await authenticator.authenticate(headers)

    return authenticate


# --- the store a long-lived server acts on ------------------------------------------------------


class StoreHolder:
    """Stands in for the ``IdentityStore`` of an app served for a whole module: every
    attribute is the current test's store, and ``authenticate`` authenticates against it."""

    def __init__(self) -> None:
        self.store: IdentityStore | None = None
        self.clock = WallClock()
        self._authenticate: Authenticate | None = None

    def use(self, store: IdentityStore | None) -> None:
        self.store = store
        self.clock = WallClock()  # each store in use starts at the real time
        self._authenticate = snapshot_authenticate(store, self.clock) if store is not None else None

    def __getattr__(self, name: str) -> Any:
        store = self.__dict__.get("store")
        if store is None:
            raise RuntimeError("no store in use: wrap the test in `using`")
        return getattr(store, name)

    async def authenticate(self, headers: dict[bytes, bytes]) -> Principal:
        if self._authenticate is None:
            raise RuntimeError("no store in use: wrap the test in `using`")
        return await self._authenticate(headers)


@asynccontextmanager
async def using(
    holder: StoreHolder, database: Database, *, migrate: bool = False
) -> AsyncIterator[IdentityStore]:
    """Open ``database`` and make it the holder's store until the block ends."""
    await database.start(migrate=migrate)
    store = IdentityStore(database)
    previous = holder.store
    holder.use(store)
    try:
        yield store
    finally:
        holder.use(previous)
        await database.close()


# --- HTTP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # names lowercased
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def error(self) -> dict[str, Any]:
        error: dict[str, Any] = self.json["error"]
        return error


class AdminClient:
    """Calls the served admin API; ``key`` goes in as ``Authorization: Bearer <key>``."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def call(
        self,
        method: str,
        path: str,
        key: str | None = None,
        body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if key is not None:
            sent["authorization"] = f"Bearer {key}"
        data = raw
        if raw is None and body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            sent.setdefault("content-type", "application/json")
        query = {name: _query_value(value) for name, value in (params or {}).items()}
        async with self._session.request(
            method, path, params=query or None, data=data, headers=sent
        ) as response:
            text = await response.text(errors="replace")
            names = {name.lower(): value for name, value in response.headers.items()}
            return Reply(response.status, names, text)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[AdminClient]:
    """Serve ``app`` with uvicorn on a loopback port, in this event loop."""
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else every
    # keep-alive request waits ~40 ms for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.005)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
            yield AdminClient(session)
    finally:
        server.should_exit = True
        await task
        sock.close()


# --- fixtures (import them into a test module) ---------------------------------------------------


@dataclass(frozen=True)
class Env:
    """One test's world: its own copy of the seeded records, served by the module's app."""

    world: World
    client: AdminClient
    store: IdentityStore
    clock: WallClock  # the authenticator's: ``advance`` it to expire keys


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The seeded template database (built once per session, shared by every module)."""
    if "template" not in _TEMPLATES:
        path = tmp_path_factory.mktemp("admin-template") / "records.db"
        _TEMPLATES["template"] = Template(path, build_template(path))
    return _TEMPLATES["template"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[tuple[StoreHolder, AdminClient]]:
    """The admin app, served once per module over whichever store the holder has.

    Its refusal audit takes any burst: a module's tests refuse hundreds of calls within
    seconds, in any order, and each test checks that its own refusals are audited (the
    rate bound has a unit test of its own)."""
    holder = StoreHolder()
    app = create_admin_app(
        holder,  # type: ignore[arg-type]
        holder.authenticate,
        MODELS.copy,
        refusal_burst=1e9,
    )
    async with serve(app) as client:
        yield holder, client


@pytest_asyncio.fixture(loop_scope="module")
async def env(
    template: Template, server: tuple[StoreHolder, AdminClient], tmp_path: Path
) -> AsyncIterator[Env]:
    holder, client = server
    path = tmp_path / "records.db"
    clone(template.path, path)
    async with using(holder, Database(sqlite_url(path))) as store:
        yield Env(template.world, client, store, holder.clock)


@pytest_asyncio.fixture(loop_scope="module", params=["sqlite", "postgresql"])
async def any_env(
    request: pytest.FixtureRequest,
    template: Template,
    server: tuple[StoreHolder, AdminClient],
    tmp_path: Path,
) -> AsyncIterator[Env]:
    """``env`` on SQLite (a clone of the template) and on PostgreSQL (a schema of its own,
    seeded alike): for tests of behaviour the store takes part in."""
    holder, client = server
    if request.param == "sqlite":
        path = tmp_path / "records.db"
        clone(template.path, path)
        async with using(holder, Database(sqlite_url(path))) as store:
            yield Env(template.world, client, store, holder.clock)
        return
    backend = Backend("postgresql", tmp_path)
    await backend.setup()
    try:
        async with using(holder, backend.database(), migrate=True) as store:
            yield Env(await seed_world(store), client, store, holder.clock)
    finally:
        await backend.teardown()

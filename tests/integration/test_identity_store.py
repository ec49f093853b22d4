"""The identity store on SQLite and PostgreSQL: records, rules, audit, versions, snapshots."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gatewise.identity.keys import hash_key
from gatewise.identity.records import Actor, Status, SubscriptionStatus
from gatewise.identity.roles import Role
from gatewise.store.engine import Database
from gatewise.store.identity import Conflict, IdentityStore, Invalid, NotFound
from gatewise.store.tables import api_keys, audit_log, metadata
from tests.integration.pg import started_database

ADMIN = Actor(name="cli:root", request_id="req-1")


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with started_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
def store(database: Database) -> IdentityStore:
    return IdentityStore(database)


@pytest.fixture
async def second(database: Database) -> AsyncIterator[IdentityStore]:
    """Another engine (pool) on the same records, as a second worker would have."""
    other = Database(database.url, connect_args=database._connect_args)
    await other.start()
    try:
        yield IdentityStore(other)
    finally:
        await other.close()


async def everything_in(database: Database) -> str:
    """Every table's every value as one text (to search for secrets)."""
    parts: list[str] = []
    async with database.engine.connect() as connection:
        for table in metadata.sorted_tables:
            parts.extend(repr(tuple(row)) for row in await connection.execute(sa.select(table)))
    return "\n".join(parts)


# --- tenants and teams -------------------------------------------------------------------------


async def test_tenants_crud_pages_and_filters(store: IdentityStore) -> None:
    created = [
        await store.create_tenant(ADMIN, name=f"t{i}", allowed_models=["gpt-4o*"] if i else None)
        for i in range(5)
    ]
    assert created[0].id.startswith("ten_") and len(created[0].id) == 20
    assert created[0].status is Status.ACTIVE and created[0].allowed_models is None
    page = await store.list_tenants(limit=2, offset=1)
    assert (page.total, page.limit, page.offset) == (5, 2, 1)
    assert [t.name for t in page.items] == ["t1", "t2"]
    assert (await store.get_tenant(created[1].id)).allowed_models == ["gpt-4o*"]
    assert (await store.get_tenant_by_name("t3")).id == created[3].id
    ids = [created[0].id, created[4].id]
    assert [t.name for t in (await store.list_tenants(ids=ids)).items] == ["t0", "t4"]
    assert (await store.list_tenants(ids=[])).total == 0

    updated = await store.update_tenant(
        ADMIN, created[2].id, display_name="Two", status="disabled", allowed_models=None
    )
    assert (updated.display_name, updated.status, updated.allowed_models) == (
        "Two",
        Status.DISABLED,
        None,
    )
    assert updated.updated_at >= updated.created_at
    disabled = await store.list_tenants(status=Status.DISABLED)
    assert [t.id for t in disabled.items] == [created[2].id] and disabled.total == 1
    assert (await store.list_tenants(name="t4")).items == [created[4]]

    await store.delete_tenant(ADMIN, created[0].id)
    with pytest.raises(NotFound, match="tenant 'ten_"):
        await store.get_tenant(created[0].id)
    with pytest.raises(NotFound):
        await store.get_tenant_by_name("t0")
    with pytest.raises(NotFound):
        await store.delete_tenant(ADMIN, created[0].id)


async def test_names_and_values_are_checked(store: IdentityStore) -> None:
    for bad in ("", "Acme", "-acme", "a" * 64, "a b", "é"):
        with pytest.raises(Invalid, match="name: ") as caught:
            await store.create_tenant(ADMIN, name=bad)
        assert caught.value.field == "name"
    with pytest.raises(Invalid, match="allowed_models: must be a list"):
        await store.create_tenant(ADMIN, name="acme", allowed_models=["ok", ""])
    tenant = await store.create_tenant(ADMIN, name="acme")
    with pytest.raises(Invalid, match="status: 'paused' is not one of"):
        await store.update_tenant(ADMIN, tenant.id, status="paused")
    with pytest.raises(Invalid, match="name: a tenant's name cannot be changed"):
        await store.update_tenant(ADMIN, tenant.id, name="other")
    with pytest.raises(Invalid, match="limit: must be between 1 and 1000"):
        await store.list_tenants(limit=0)
    with pytest.raises(Invalid, match="offset"):
        await store.list_tenants(offset=-1)


async def test_unique_names_conflict(store: IdentityStore) -> None:
    acme = await store.create_tenant(ADMIN, name="acme")
    other = await store.create_tenant(ADMIN, name="other")
    with pytest.raises(Conflict, match="a tenant named 'acme' already exists"):
        await store.create_tenant(ADMIN, name="acme")
    team = await store.create_team(ADMIN, tenant_id=acme.id, name="ml")
    await store.create_team(ADMIN, tenant_id=other.id, name="ml")  # unique per tenant only
    with pytest.raises(Conflict, match="a team named 'ml' already exists in this tenant"):
        await store.create_team(ADMIN, tenant_id=acme.id, name="ml")
    second = await store.create_team(ADMIN, tenant_id=acme.id, name="web")
    with pytest.raises(Conflict, match="'ml' already exists"):
        await store.update_team(ADMIN, second.id, name="ml")
    assert (await store.update_team(ADMIN, team.id, name="ml")).name == "ml"  # unchanged: fine
    await store.create_app(ADMIN, tenant_id=acme.id, name="bot")
    with pytest.raises(Conflict, match="an app named 'bot' already exists"):
        await store.create_app(ADMIN, tenant_id=acme.id, name="bot")
    await store.create_user(ADMIN, email="Ann@Example.com", role=Role.VIEWER, tenant_id=acme.id)
    taken = r"a user with email 'ann@example\.com' already exists in this tenant"
    with pytest.raises(Conflict, match=taken):
        await store.create_user(ADMIN, email="ann@example.COM", role=Role.VIEWER, tenant_id=acme.id)
    # Unique per tenant (and among platform admins): another tenant's Ann is another user.
    twin = await store.create_user(
        ADMIN, email="ann@example.COM", role=Role.DEVELOPER, tenant_id=other.id
    )
    assert (twin.email, twin.tenant_id) == ("ann@example.com", other.id)
    await store.create_user(ADMIN, email="ann@example.com", role=Role.PLATFORM_ADMIN)
    with pytest.raises(Conflict, match="already exists among platform admins"):
        await store.create_user(ADMIN, email="ANN@example.com", role=Role.PLATFORM_ADMIN)
    assert (await store.list_users(email="ann@example.com")).total == 3
    assert (await store.list_users(email="ann@example.com", tenant_id=other.id)).items == [twin]


async def test_teams_crud_and_parents(store: IdentityStore) -> None:
    acme = await store.create_tenant(ADMIN, name="acme")
    with pytest.raises(NotFound, match="tenant_id: tenant 'ten_missing' not found") as caught:
        await store.create_team(ADMIN, tenant_id="ten_missing", name="ml")
    assert caught.value.field == "tenant_id"
    ml = await store.create_team(ADMIN, tenant_id=acme.id, name="ml", allowed_models=["a"])
    assert ml.id.startswith("team_") and ml.tenant_id == acme.id
    other = await store.create_tenant(ADMIN, name="other")
    await store.create_team(ADMIN, tenant_id=other.id, name="x")
    page = await store.list_teams(tenant_id=acme.id)
    assert page.total == 1 and page.items == [ml]
    assert (await store.list_teams()).total == 2
    assert (await store.list_teams(name="x")).items[0].tenant_id == other.id
    renamed = await store.update_team(ADMIN, ml.id, name="research", allowed_models=None)
    assert (renamed.name, renamed.allowed_models) == ("research", None)
    assert await store.get_team(ml.id) == renamed
    await store.delete_team(ADMIN, ml.id)
    with pytest.raises(NotFound, match="team "):
        await store.get_team(ml.id)


# --- apps and users ----------------------------------------------------------------------------


async def test_apps_and_users(store: IdentityStore) -> None:
    acme = await store.create_tenant(ADMIN, name="acme")
    other = await store.create_tenant(ADMIN, name="other")
    ml = await store.create_team(ADMIN, tenant_id=acme.id, name="ml")
    foreign = await store.create_team(ADMIN, tenant_id=other.id, name="ml")

    app = await store.create_app(ADMIN, tenant_id=acme.id, name="bot", team_id=ml.id)
    assert app.id.startswith("app_") and app.role is Role.CONSUMER and app.status is Status.ACTIVE
    with pytest.raises(Invalid, match=r"team_id: team 'team_\w+' belongs to another tenant"):
        await store.create_app(ADMIN, tenant_id=acme.id, name="x", team_id=foreign.id)
    with pytest.raises(NotFound, match="team_id: team 'team_nope' not found"):
        await store.create_app(ADMIN, tenant_id=acme.id, name="x", team_id="team_nope")
    with pytest.raises(Invalid, match="role: an app belongs to a tenant"):
        await store.create_app(ADMIN, tenant_id=acme.id, name="x", role=Role.PLATFORM_ADMIN)
    ci = await store.create_app(ADMIN, tenant_id=acme.id, name="ci", role=Role.DEVELOPER)
    assert (await store.list_apps(tenant_id=acme.id, team_id=ml.id)).items == [app]
    assert (await store.list_apps(tenant_id=acme.id)).total == 2
    moved = await store.update_app(ADMIN, ci.id, team_id=ml.id, status=Status.DISABLED)
    assert (moved.team_id, moved.status) == (ml.id, Status.DISABLED)
    assert (await store.list_apps(status=Status.DISABLED)).items == [moved]
    assert (await store.update_app(ADMIN, ci.id, team_id=None)).team_id is None
    with pytest.raises(Invalid, match=r"team_id: .* another tenant"):
        await store.update_app(ADMIN, ci.id, team_id=foreign.id)

    root = await store.create_user(ADMIN, email="root@example.com", role=Role.PLATFORM_ADMIN)
    assert root.tenant_id is None and root.id.startswith("usr_")
    with pytest.raises(Invalid, match="tenant_id: a tenant_admin belongs to a tenant"):
        await store.create_user(ADMIN, email="a@example.com", role=Role.TENANT_ADMIN)
    with pytest.raises(Invalid, match="email: 'nobody' is not an email address"):
        await store.create_user(ADMIN, email="nobody", role=Role.VIEWER, tenant_id=acme.id)
    with pytest.raises(Invalid, match="role: 'boss' is not one of"):
        await store.create_user(ADMIN, email="b@example.com", role="boss", tenant_id=acme.id)  # type: ignore[arg-type]
    dev = await store.create_user(
        ADMIN, email="dev@example.com", role=Role.DEVELOPER, tenant_id=acme.id, team_id=ml.id
    )
    with pytest.raises(Invalid, match="role: a viewer belongs to a tenant"):
        await store.update_user(ADMIN, root.id, role=Role.VIEWER)
    promoted = await store.update_user(ADMIN, dev.id, role=Role.TENANT_ADMIN, team_id=None)
    assert (promoted.role, promoted.team_id) == (Role.TENANT_ADMIN, None)
    assert (await store.list_users(tenant_id=acme.id)).items == [promoted]
    assert (await store.list_users(role=Role.PLATFORM_ADMIN)).items == [root]
    assert (await store.list_users(email="DEV@example.com")).total == 1
    assert await store.get_user(dev.id) == promoted
    with pytest.raises(Invalid, match="email: a user's email cannot be changed"):
        await store.update_user(ADMIN, dev.id, email="x@example.com")


# --- keys --------------------------------------------------------------------------------------


async def test_keys_are_stored_as_hashes_only(store: IdentityStore, database: Database) -> None:
    acme = await store.create_tenant(ADMIN, name="acme")
    app = await store.create_app(ADMIN, tenant_id=acme.id, name="bot")
    key, plaintext = await store.create_key(
        ADMIN, app_id=app.id, name="prod", allowed_models=["gpt-4o"], tags=["prod", "eu"]
    )
    assert plaintext.startswith("gw-" + key.kid + "_") and len(plaintext) == 59
    assert key.id == "key_" + key.kid and key.prefix == "gw-" + key.kid
    assert key.key_hash == hash_key(plaintext).hex() and key.tenant_id == acme.id
    assert (key.role, key.allowed_models, key.tags) == (None, ["gpt-4o"], ["prod", "eu"])
    assert await store.get_key(key.id) == key
    secret = plaintext.split("_", 1)[1]
    text = await everything_in(database)
    assert key.key_hash in text  # the one place it lives
    assert plaintext not in text and secret not in text
    assert database.url.startswith("postgresql") or all(
        secret.encode() not in path.read_bytes()
        for path in Path(database.url.split("///", 1)[1]).parent.glob("records.db*")
    )
    async with database.engine.connect() as connection:
        audit = [tuple(r) for r in await connection.execute(sa.select(audit_log))]
    assert key.key_hash not in repr(audit) and "key_hash" not in repr(audit)


async def test_key_owners_and_roles(store: IdentityStore) -> None:
    acme = await store.create_tenant(ADMIN, name="acme")
    app = await store.create_app(ADMIN, tenant_id=acme.id, name="bot", role=Role.DEVELOPER)
    user = await store.create_user(
        ADMIN, email="v@example.com", role=Role.VIEWER, tenant_id=acme.id
    )
    root = await store.create_user(ADMIN, email="root@example.com", role=Role.PLATFORM_ADMIN)
    with pytest.raises(Invalid, match="app_id: give exactly one of app_id and user_id"):
        await store.create_key(ADMIN, name="k")
    with pytest.raises(Invalid, match="exactly one"):
        await store.create_key(ADMIN, name="k", app_id=app.id, user_id=user.id)
    with pytest.raises(NotFound, match="app_id: app 'app_x' not found"):
        await store.create_key(ADMIN, name="k", app_id="app_x")
    with pytest.raises(NotFound, match="user_id: user"):
        await store.create_key(ADMIN, name="k", user_id="usr_x")
    with pytest.raises(
        Invalid, match=r"role: a key cannot have more power than its owner \(viewer\)"
    ):
        await store.create_key(ADMIN, name="k", user_id=user.id, role=Role.DEVELOPER)
    with pytest.raises(Invalid, match=r"role: .*\(developer\)"):
        await store.create_key(ADMIN, name="k", app_id=app.id, role=Role.TENANT_ADMIN)
    with pytest.raises(Invalid, match="expires_at: must be in the future"):
        await store.create_key(ADMIN, name="k", app_id=app.id, expires_at=time.time() - 1)
    with pytest.raises(Invalid, match="name: must be a non-empty string"):
        await store.create_key(ADMIN, name=" ", app_id=app.id)
    narrowed, _ = await store.create_key(ADMIN, name="k", app_id=app.id, role=Role.CONSUMER)
    assert narrowed.role is Role.CONSUMER
    mine, _ = await store.create_key(ADMIN, name="mine", user_id=user.id)
    assert (mine.user_id, mine.app_id, mine.tenant_id) == (user.id, None, acme.id)
    admin_key, _ = await store.create_key(
        ADMIN, name="root", user_id=root.id, role=Role.PLATFORM_ADMIN
    )
    assert admin_key.tenant_id is None


async def test_key_lists_update_revoke(store: IdentityStore) -> None:
    acme = await store.create_tenant(ADMIN, name="acme")
    app = await store.create_app(ADMIN, tenant_id=acme.id, name="bot")
    other = await store.create_app(ADMIN, tenant_id=acme.id, name="other")
    keys = [
        (
            await store.create_key(
                ADMIN, app_id=app.id, name=f"k{i}", tags=["even"] if i % 2 == 0 else []
            )
        )[0]
        for i in range(4)
    ]
    await store.create_key(ADMIN, app_id=other.id, name="x")
    assert (await store.list_keys(app_id=app.id)).total == 4
    assert (await store.list_keys(tenant_id=acme.id)).total == 5
    tagged = await store.list_keys(tag="even")
    assert [k.name for k in tagged.items] == ["k0", "k2"] and tagged.total == 2
    assert (await store.list_keys(tag="eve")).total == 0

    soon = time.time() + 3600
    updated = await store.update_key(
        ADMIN, keys[1].id, name="renamed", tags=["a"], allowed_models=["m"], expires_at=soon
    )
    assert (updated.name, updated.tags, updated.allowed_models, updated.expires_at) == (
        "renamed",
        ["a"],
        ["m"],
        soon,
    )
    assert updated.key_hash == keys[1].key_hash
    with pytest.raises(Invalid, match="role: a key's role cannot be changed"):
        await store.update_key(ADMIN, keys[1].id, role=Role.VIEWER)

    revoked = await store.revoke_key(ADMIN, keys[0].id)
    assert revoked.revoked_at is not None and revoked.revoked_at <= time.time()
    with pytest.raises(Conflict, match="is revoked"):
        await store.revoke_key(ADMIN, keys[0].id)
    with pytest.raises(Conflict, match="is revoked"):
        await store.update_key(ADMIN, keys[0].id, name="n")
    page = await store.list_keys(app_id=app.id, limit=2)
    assert page.total == 3 and [k.name for k in page.items] == ["renamed", "k2"]
    assert (await store.list_keys(app_id=app.id, include_revoked=True)).total == 4
    with pytest.raises(NotFound, match="key 'key_nope' not found"):
        await store.revoke_key(ADMIN, "key_nope")


async def test_rotation_keeps_the_old_key_for_the_grace_period(store: IdentityStore) -> None:
    acme = await store.create_tenant(ADMIN, name="acme")
    app = await store.create_app(ADMIN, tenant_id=acme.id, name="bot", role=Role.DEVELOPER)
    old, old_plain = await store.create_key(
        ADMIN,
        app_id=app.id,
        name="prod",
        role=Role.CONSUMER,
        allowed_models=["m"],
        tags=["t"],
        expires_at=time.time() + 30 * 86400,
    )
    before = time.time()
    new, plaintext = await store.rotate_key(ADMIN, old.id, grace_seconds=600)
    assert plaintext != old_plain and new.key_hash == hash_key(plaintext).hex()
    assert (new.name, new.role, new.allowed_models, new.tags, new.app_id, new.tenant_id) == (
        "prod",
        Role.CONSUMER,
        ["m"],
        ["t"],
        app.id,
        acme.id,
    )
    assert new.expires_at is not None  # the same 30-day lifetime, from now
    assert new.expires_at - new.created_at == pytest.approx(old.expires_at - old.created_at)  # type: ignore[operator]
    rotated = await store.get_key(old.id)
    assert rotated.replaced_by == new.id and rotated.revoked_at is None
    assert (
        rotated.expires_at is not None and before + 600 <= rotated.expires_at <= time.time() + 600
    )
    with pytest.raises(Conflict, match=f"already rotated; rotate '{new.id}' instead"):
        await store.rotate_key(ADMIN, old.id)
    # A short remaining life is not extended by the grace period.
    short, _ = await store.create_key(ADMIN, app_id=app.id, name="s", expires_at=time.time() + 60)
    await store.rotate_key(ADMIN, short.id, grace_seconds=86400)
    assert (await store.get_key(short.id)).expires_at == short.expires_at
    await store.revoke_key(ADMIN, new.id)
    with pytest.raises(Conflict, match="is revoked"):
        await store.rotate_key(ADMIN, new.id)
    with pytest.raises(Invalid, match="grace_seconds"):
        await store.rotate_key(ADMIN, short.id, grace_seconds=-1)
    entries = (await store.list_audit(object_id=old.id)).items
    assert [e.action for e in entries] == ["rotate", "create"]
    assert entries[0].after is not None and entries[0].after["replaced_by"] == new.id


# --- subscriptions -----------------------------------------------------------------------------


async def test_subscription_state_machine(store: IdentityStore) -> None:
    acme = await store.create_tenant(ADMIN, name="acme")
    app = await store.create_app(ADMIN, tenant_id=acme.id, name="bot")
    caller = Actor(name="key:key_x", tenant_id=acme.id)
    sub = await store.request_subscription(caller, app_id=app.id, model="gpt-4o", note="pls")
    assert (sub.status, sub.requested_by, sub.tenant_id, sub.note) == (
        SubscriptionStatus.PENDING,
        "key:key_x",
        acme.id,
        "pls",
    )
    with pytest.raises(Conflict, match=r"already has a subscription to 'gpt-4o' \(pending\)"):
        await store.request_subscription(caller, app_id=app.id, model="gpt-4o")
    with pytest.raises(Conflict, match="it is pending, not approved"):
        await store.revoke_subscription(ADMIN, sub.id)
    approved = await store.approve_subscription(ADMIN, sub.id, reason="ok")
    assert (approved.status, approved.decided_by, approved.reason) == (
        SubscriptionStatus.APPROVED,
        "cli:root",
        "ok",
    )
    assert approved.decided_at is not None
    with pytest.raises(Conflict, match=r"already has a subscription to 'gpt-4o' \(approved\)"):
        await store.request_subscription(caller, app_id=app.id, model="gpt-4o")
    for decide in (store.approve_subscription, store.reject_subscription):
        with pytest.raises(Conflict, match="it is approved, not pending"):
            await decide(ADMIN, sub.id)
    revoked = await store.revoke_subscription(ADMIN, sub.id, reason="abuse")
    assert (revoked.status, revoked.reason) == (SubscriptionStatus.REVOKED, "abuse")
    for decide in (
        store.approve_subscription,
        store.reject_subscription,
        store.revoke_subscription,
    ):
        with pytest.raises(Conflict, match="it is revoked"):
            await decide(ADMIN, sub.id)

    again = await store.request_subscription(caller, app_id=app.id, model="gpt-4o")
    rejected = await store.reject_subscription(ADMIN, again.id)
    assert rejected.status is SubscriptionStatus.REJECTED and rejected.reason is None
    with pytest.raises(Conflict, match="it is rejected, not approved"):
        await store.revoke_subscription(ADMIN, again.id)
    with pytest.raises(NotFound, match="app_id: app 'app_x' not found"):
        await store.request_subscription(caller, app_id="app_x", model="m")
    with pytest.raises(NotFound, match="subscription 'sub_x' not found"):
        await store.approve_subscription(ADMIN, "sub_x")

    page = await store.list_subscriptions(tenant_id=acme.id)
    assert [s.status for s in page.items] == [
        SubscriptionStatus.REVOKED,
        SubscriptionStatus.REJECTED,
    ]
    assert (await store.list_subscriptions(status=SubscriptionStatus.REJECTED)).items == [rejected]
    assert (await store.list_subscriptions(app_id=app.id, model="gpt-4o")).total == 2
    assert await store.get_subscription(sub.id) == revoked
    actions = [e.action for e in (await store.list_audit(object_type="subscription")).items]
    assert actions == ["reject", "request", "revoke", "approve", "request"]


# --- audit and versions ------------------------------------------------------------------------


async def test_every_mutation_is_audited_and_bumps_the_version(store: IdentityStore) -> None:
    start = await store.version()
    actor = Actor(name="key:key_admin", tenant_id=None, request_id="req-42")
    tenant = await store.create_tenant(actor, name="acme")
    assert await store.version() == start + 1
    await store.update_tenant(actor, tenant.id, display_name="ACME")
    assert await store.version() == start + 2
    with pytest.raises(Conflict):
        await store.create_tenant(actor, name="acme")
    with pytest.raises(NotFound):
        await store.update_tenant(actor, "ten_missing", display_name="x")
    assert await store.version() == start + 2  # failed mutations change nothing

    entries = (await store.list_audit(tenant_id=tenant.id)).items
    assert [e.action for e in entries] == ["update", "create"]
    update, create = entries
    assert (update.actor, update.actor_tenant_id, update.request_id) == (
        "key:key_admin",
        None,
        "req-42",
    )
    assert (update.object_type, update.object_id, update.tenant_id) == (
        "tenant",
        tenant.id,
        tenant.id,
    )
    assert update.before is not None and update.after is not None
    assert (update.before["display_name"], update.after["display_name"]) == (None, "ACME")
    assert update.after["status"] == "active"
    assert create.before is None and create.after is not None and create.after["name"] == "acme"
    assert update.id > create.id and update.at >= create.at
    assert (await store.list_audit()).total == 2
    assert (await store.list_audit(actor="someone")).total == 0
    assert (await store.list_audit(since=update.at)).total >= 1
    assert (await store.list_audit(until=create.at)).total == 0
    assert (await store.list_audit(object_type="tenant", object_id=tenant.id, limit=1)).items == [
        update
    ]


async def test_concurrent_writers_serialise(store: IdentityStore, second: IdentityStore) -> None:
    """Writers on two engines at once: none deadlocks or fails, each bumps the version once."""
    start = await store.version()
    stores = [store, second] * 10
    created = await asyncio.gather(
        *(s.create_tenant(ADMIN, name=f"t{i}") for i, s in enumerate(stores))
    )
    assert len({t.id for t in created}) == 20
    assert await second.version() == start + 20
    assert (await store.list_tenants()).total == 20
    results = await asyncio.gather(
        *(s.create_tenant(ADMIN, name="same") for s in stores[:4]), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))


# --- deletion rules ----------------------------------------------------------------------------


async def test_delete_rules(store: IdentityStore) -> None:
    acme = await store.create_tenant(ADMIN, name="acme")
    team = await store.create_team(ADMIN, tenant_id=acme.id, name="ml")
    app = await store.create_app(ADMIN, tenant_id=acme.id, name="bot", team_id=team.id)
    user = await store.create_user(
        ADMIN, email="d@example.com", role=Role.DEVELOPER, tenant_id=acme.id, team_id=team.id
    )
    app_key, _ = await store.create_key(ADMIN, app_id=app.id, name="a")
    user_key, _ = await store.create_key(ADMIN, user_id=user.id, name="u")
    sub = await store.request_subscription(ADMIN, app_id=app.id, model="m")
    with pytest.raises(Conflict, match="tenant 'acme' still has teams"):
        await store.delete_tenant(ADMIN, acme.id)
    with pytest.raises(Conflict, match="team 'ml' still has apps"):
        await store.delete_team(ADMIN, team.id)

    await store.delete_app(ADMIN, app.id)
    assert (await store.get_key(app_key.id)).revoked_at is not None
    with pytest.raises(NotFound):
        await store.get_subscription(sub.id)
    with pytest.raises(Conflict, match="team 'ml' still has users"):
        await store.delete_team(ADMIN, team.id)
    await store.delete_user(ADMIN, user.id)
    assert (await store.get_key(user_key.id)).revoked_at is not None
    actions = {(e.object_type, e.action) for e in (await store.list_audit(tenant_id=acme.id)).items}
    assert {
        ("key", "revoke"),
        ("subscription", "delete"),
        ("app", "delete"),
        ("user", "delete"),
    } <= actions

    await store.delete_team(ADMIN, team.id)
    other = await store.create_tenant(ADMIN, name="other")
    lone = await store.create_user(
        ADMIN, email="o@example.com", role=Role.VIEWER, tenant_id=other.id
    )
    await store.create_key(ADMIN, user_id=lone.id, name="k")
    with pytest.raises(Conflict, match="tenant 'other' still has users"):
        await store.delete_tenant(ADMIN, other.id)
    await store.delete_tenant(ADMIN, acme.id)  # its revoked keys go with it
    with pytest.raises(NotFound):
        await store.get_key(app_key.id)


# --- the hot path's snapshot -------------------------------------------------------------------


async def test_snapshot_contents(store: IdentityStore, database: Database) -> None:
    acme = await store.create_tenant(ADMIN, name="acme")
    team = await store.create_team(ADMIN, tenant_id=acme.id, name="ml")
    app = await store.create_app(ADMIN, tenant_id=acme.id, name="bot")
    user = await store.create_user(ADMIN, email="r@example.com", role=Role.PLATFORM_ADMIN)
    live, _ = await store.create_key(ADMIN, app_id=app.id, name="live")
    recent, _ = await store.create_key(ADMIN, app_id=app.id, name="recent")
    old, _ = await store.create_key(ADMIN, user_id=user.id, name="old")
    await store.revoke_key(ADMIN, recent.id)
    await store.revoke_key(ADMIN, old.id)
    async with database.engine.begin() as connection:
        await connection.execute(
            sa.update(api_keys).where(api_keys.c.id == old.id).values(revoked_at=time.time() - 3601)
        )
    approved = await store.request_subscription(ADMIN, app_id=app.id, model="gpt-4o")
    await store.approve_subscription(ADMIN, approved.id)
    await store.request_subscription(ADMIN, app_id=app.id, model="pending-model")

    snapshot = await store.snapshot()
    assert snapshot.version == await store.version()
    assert snapshot.tenants == [await store.get_tenant(acme.id)]
    assert snapshot.teams == [team] and snapshot.apps == [app] and snapshot.users == [user]
    assert sorted(k.name for k in snapshot.keys) == ["live", "recent"]
    assert {k.id: k for k in snapshot.keys}[live.id] == live
    assert snapshot.approved == [(app.id, "gpt-4o")]


async def test_snapshot_of_ten_thousand_keys_is_fast(
    store: IdentityStore, database: Database
) -> None:
    acme = await store.create_tenant(ADMIN, name="acme")
    app = await store.create_app(ADMIN, tenant_id=acme.id, name="bot")
    statements: list[str] = []

    def count(_c: object, _cur: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    await store.snapshot()
    without_keys, statements[:] = len(statements), []
    now = time.time()
    rows = [
        {
            "id": f"key_{i:012d}",
            "kid": f"{i:012d}",
            "key_hash": "ab" * 32,
            "tenant_id": acme.id,
            "app_id": app.id,
            "user_id": None,
            "name": f"k{i}",
            "role": None,
            "allowed_models": ["gpt-4o*"],
            "tags": ["bulk"],
            "created_at": now,
            "expires_at": None,
            "revoked_at": None,
            "replaced_by": None,
        }
        for i in range(10_000)
    ]
    async with database.engine.begin() as connection:
        await connection.execute(api_keys.insert(), rows)
    statements.clear()
    started = time.perf_counter()
    snapshot = await store.snapshot()
    elapsed = time.perf_counter() - started
    sa.event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    print(f"snapshot of 10,000 keys ({database.engine.dialect.name}): {elapsed * 1000:.0f} ms")
    assert len(snapshot.keys) == 10_000 and snapshot.keys[0].tags == ["bulk"]
    # As many queries as without any key (none per key), and no pathology: about 0.1 s
    # here when the machine is quiet; the bound leaves room for a busy one.
    assert 0 < len(statements) == without_keys
    assert elapsed < 5.0

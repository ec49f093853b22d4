"""The audit trail's hash chain on real SQLite and PostgreSQL: intact chains verify; an edited,
deleted, reordered or forged entry is found; several writers at once keep the chain whole."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gatewise.identity.records import Actor
from gatewise.store import audit_chain
from gatewise.store.engine import Database
from gatewise.store.identity import IdentityStore
from gatewise.store.migrations import HEAD, current_revision
from gatewise.store.tables import audit_head, audit_log
from tests.integration.pg import Backend

ADMIN = Actor(name="cli:root", request_id="req-1")


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    backend = Backend(request.param, tmp_path)
    await backend.setup()
    try:
        yield backend
    finally:
        await backend.teardown()


@pytest.fixture
async def database(backend: Backend) -> AsyncIterator[Database]:
    database = backend.database()
    await database.start()
    try:
        yield database
    finally:
        await database.close()


def entry(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "at": 1_750_000_000.0 + n / 7,
        "actor": f"key:key_{n}",
        "actor_tenant_id": "ten_a",
        "action": "guardrail_block",
        "object_type": "guardrail",
        "object_id": "pii",
        "tenant_id": "ten_a",
        "before": None,
        "after": {"category": "email", "n": n},
        "request_id": f"req_{n}",
        **extra,
    }


async def append(database: Database, *entries: dict[str, Any]) -> list[dict[str, Any]]:
    async with database.engine.begin() as connection:
        return await audit_chain.append(connection, entries)


async def filled(database: Database, count: int = 6) -> None:
    for n in range(1, count + 1):
        await append(database, entry(n))


async def execute(database: Database, *statements: sa.Executable) -> None:
    async with database.engine.begin() as connection:
        for statement in statements:
            await connection.execute(statement)


def at_seq(seq: int) -> sa.ColumnElement[bool]:
    return audit_log.c.seq == seq


async def row_of(database: Database, seq: int) -> Any:
    async with database.engine.connect() as connection:
        return (await connection.execute(sa.select(audit_log).where(at_seq(seq)))).one()


# --- intact chains ----------------------------------------------------------------------------


async def test_identity_changes_refusals_and_batches_form_one_intact_chain(
    database: Database,
) -> None:
    store = IdentityStore(database)
    tenant = await store.create_tenant(ADMIN, name="acme")
    await store.update_tenant(ADMIN, tenant.id, display_name="Acme Inc.")
    await store.record_refusal(
        ADMIN, object_type="key", object_id="key_x", tenant_id=None, attempt={"status": 403}
    )
    odd = {"whole": 1.0, "huge": 1e20, "tiny": 1.5e-7, "list": [2.0, {"b": 0.1, "a": None}]}
    await append(database, entry(1, after=odd), entry(2), entry(3))

    report = await audit_chain.verify(database.engine)
    assert report.intact, report.broken
    assert report.entries == report.last_seq == 6
    async with database.engine.connect() as connection:
        rows = (await connection.execute(sa.select(audit_log).order_by(audit_log.c.seq))).all()
        head = (await connection.execute(sa.select(audit_head))).one()
    assert [row.seq for row in rows] == [1, 2, 3, 4, 5, 6]
    assert [row.action for row in rows[:3]] == ["create", "update", "refuse"]
    assert rows[0].prev_hash == audit_chain.GENESIS
    assert all(rows[i].prev_hash == rows[i - 1].hash for i in range(1, 6))
    assert (head.seq, head.hash) == (6, rows[-1].hash)
    assert [row.id for row in rows] == sorted(row.id for row in rows)


async def test_approvals_are_chained_entries(database: Database) -> None:
    """A subscription's request and its approval (or rejection) are audited, in the chain."""
    store = IdentityStore(database)
    tenant = await store.create_tenant(ADMIN, name="acme")
    app = await store.create_app(ADMIN, tenant_id=tenant.id, name="bot")
    caller = Actor(name="key:key_x", tenant_id=tenant.id)
    first = await store.request_subscription(caller, app_id=app.id, model="gpt-4o")
    await store.approve_subscription(ADMIN, first.id, reason="ok")
    second = await store.request_subscription(caller, app_id=app.id, model="o3")
    await store.reject_subscription(ADMIN, second.id, reason="too dear")
    async with database.engine.connect() as connection:
        query = sa.select(audit_log).where(audit_log.c.object_type == "subscription")
        rows = (await connection.execute(query.order_by(audit_log.c.seq))).all()
    assert [(row.action, row.actor, row.object_id) for row in rows] == [
        ("request", "key:key_x", first.id),
        ("approve", "cli:root", first.id),
        ("request", "key:key_x", second.id),
        ("reject", "cli:root", second.id),
    ]
    assert rows[1].before["status"] == "pending" and rows[1].after["status"] == "approved"
    report = await audit_chain.verify(database.engine)
    assert report.intact and report.entries == 6


async def test_an_empty_trail_verifies(database: Database) -> None:
    report = await audit_chain.verify(database.engine)
    assert report.intact and report.entries == 0 and report.last_hash == audit_chain.GENESIS


async def test_verify_walks_page_by_page(database: Database) -> None:
    await append(database, *(entry(n) for n in range(1, 26)))
    report = await audit_chain.verify(database.engine, page=4)
    assert report.intact and report.entries == 25
    await execute(database, sa.update(audit_log).where(at_seq(23)).values(object_id="moved"))
    broken = (await audit_chain.verify(database.engine, page=4)).broken
    assert broken is not None and (broken.seq, broken.kind) == (23, "edited")


# --- tampering --------------------------------------------------------------------------------


async def test_an_edited_entry_is_found(database: Database) -> None:
    await filled(database)
    await execute(
        database, sa.update(audit_log).where(at_seq(4)).values(after={"category": "phone"})
    )
    report = await audit_chain.verify(database.engine)
    broken = report.broken
    assert broken is not None
    assert (broken.seq, broken.kind) == (4, "edited")
    assert broken.id == (await row_of(database, 4)).id
    assert report.entries == 3  # the three before it hold
    assert "seq 4 (id " in broken.describe() and "does not match its hash" in broken.describe()


async def test_an_edited_entry_with_a_recomputed_hash_breaks_the_next_link(
    database: Database,
) -> None:
    await filled(database)
    row = await row_of(database, 3)
    forged = dict(row._mapping) | {"actor": "cli:someone-else"}
    new_hash = audit_chain.chain_hash(row.prev_hash, forged)
    await execute(
        database,
        sa.update(audit_log).where(at_seq(3)).values(actor="cli:someone-else", hash=new_hash),
    )
    broken = (await audit_chain.verify(database.engine)).broken
    assert broken is not None and (broken.seq, broken.kind) == (4, "inserted")
    assert "not the hash of seq 3" in broken.problem


async def test_a_deleted_entry_is_found(database: Database) -> None:
    await filled(database)
    await execute(database, sa.delete(audit_log).where(at_seq(3)))
    broken = (await audit_chain.verify(database.engine)).broken
    assert broken is not None and (broken.seq, broken.kind) == (4, "deleted")
    assert "seq 3" in broken.problem


async def test_deleted_newest_entries_are_found_by_the_head(database: Database) -> None:
    await filled(database)
    await execute(database, sa.delete(audit_log).where(audit_log.c.seq >= 5))
    broken = (await audit_chain.verify(database.engine)).broken
    assert broken is not None and (broken.seq, broken.kind) == (5, "deleted")
    assert "seq 5..6" in broken.problem


async def test_a_deleted_first_entry_is_found(database: Database) -> None:
    await filled(database)
    await execute(database, sa.delete(audit_log).where(at_seq(1)))
    broken = (await audit_chain.verify(database.engine)).broken
    assert broken is not None and (broken.seq, broken.kind) == (2, "deleted")


async def test_deleted_and_renumbered_entries_are_found(database: Database) -> None:
    await filled(database)
    await execute(
        database,
        sa.delete(audit_log).where(at_seq(3)),
        sa.update(audit_log).where(audit_log.c.seq > 3).values(seq=audit_log.c.seq - 1),
    )
    broken = (await audit_chain.verify(database.engine)).broken
    assert broken is not None and broken.seq == 3 and broken.kind == "inserted"


async def test_reordered_entries_are_found(database: Database) -> None:
    await filled(database)
    await execute(  # swap the places (seq) of entries 3 and 4
        database,
        sa.update(audit_log).where(at_seq(3)).values(seq=-3),
        sa.update(audit_log).where(at_seq(4)).values(seq=3),
        sa.update(audit_log).where(at_seq(-3)).values(seq=4),
    )
    broken = (await audit_chain.verify(database.engine)).broken
    assert broken is not None and (broken.seq, broken.kind) == (3, "reordered")
    assert "follows seq 3" in broken.problem or "follows seq 4" in broken.problem


async def test_entries_reordered_by_id_are_found(database: Database) -> None:
    """The admin API lists by id: swapping two entries' ids reorders what it shows."""
    await filled(database)
    first, second = (await row_of(database, 2)).id, (await row_of(database, 5)).id
    await execute(
        database,
        sa.update(audit_log).where(audit_log.c.id == first).values(id=-1),
        sa.update(audit_log).where(audit_log.c.id == second).values(id=first),
        sa.update(audit_log).where(audit_log.c.id == -1).values(id=second),
    )
    broken = (await audit_chain.verify(database.engine)).broken
    assert broken is not None and (broken.seq, broken.kind) == (3, "reordered")


async def test_forged_entries_are_found(database: Database) -> None:
    await filled(database)
    last = await row_of(database, 6)
    forged = entry(7)
    # Appended at the end, chained correctly, but past the head's back.
    await execute(
        database,
        audit_log.insert().values(
            **forged, seq=7, prev_hash=last.hash, hash=audit_chain.chain_hash(last.hash, forged)
        ),
    )
    broken = (await audit_chain.verify(database.engine)).broken
    assert broken is not None and (broken.seq, broken.kind) == (7, "inserted")


async def test_an_entry_forged_into_the_middle_is_found(database: Database) -> None:
    await filled(database)
    third = await row_of(database, 3)
    forged = entry(99)
    await execute(
        database,
        sa.update(audit_log).where(audit_log.c.seq > 3).values(seq=audit_log.c.seq + 100),
        sa.update(audit_log).where(audit_log.c.seq > 100).values(seq=audit_log.c.seq - 99),
        audit_log.insert().values(
            **forged, seq=4, prev_hash=third.hash, hash=audit_chain.chain_hash(third.hash, forged)
        ),
    )
    broken = (await audit_chain.verify(database.engine)).broken
    assert broken is not None
    # The forged entry itself links to seq 3, but its id is newer than the next ones'.
    assert (broken.seq, broken.kind) in {(4, "reordered"), (5, "reordered")}


# --- several writers --------------------------------------------------------------------------


async def test_several_connections_appending_at_once_keep_the_chain(
    backend: Backend, database: Database
) -> None:
    others = [backend.database() for _ in range(3)]
    await asyncio.gather(*(other.start() for other in others))
    try:
        writers = [database, *others]

        async def write(index: int, writer: Database) -> None:
            for n in range(15):
                if n % 5 == 0:
                    await append(writer, entry(index * 100 + n), entry(index * 100 + n + 50))
                else:
                    await append(writer, entry(index * 100 + n))

        await asyncio.gather(*(write(i, w) for i, w in enumerate(writers)))
    finally:
        await asyncio.gather(*(other.close() for other in others))
    report = await audit_chain.verify(database.engine)
    assert report.intact, report.broken
    assert report.entries == 4 * 18


def _append_in_process(url: str, connect_args: dict[str, Any] | None, worker: int) -> int:
    async def run() -> int:
        database = Database(url, connect_args=connect_args)
        await database.start()
        try:
            for n in range(20):
                await append(database, entry(worker * 1000 + n))
        finally:
            await database.close()
        return 20

    return asyncio.run(run())


async def test_several_processes_appending_at_once_keep_the_chain(
    backend: Backend, database: Database
) -> None:
    await append(database, entry(0))
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(4, mp_context=context) as pool:
        written = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool, _append_in_process, backend.url, backend.connect_args, worker
                )
                for worker in range(1, 5)
            )
        )
    assert sum(written) == 80
    report = await audit_chain.verify(database.engine)
    assert report.intact, report.broken
    assert report.entries == 81


# --- the migration ----------------------------------------------------------------------------


async def test_the_migration_chains_existing_entries_in_id_order(backend: Backend) -> None:
    from gatewise.store.migrations import _run_alembic, upgrade_engine

    database = backend.database()
    await database.start(migrate=False)
    engine = database.engine
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_alembic, "0006")
            await connection.commit()
        old = sa.table(
            "audit_log",
            *(sa.column(name) for name in ("at", "actor", "action", "object_type", "object_id")),
            sa.column("after", sa.JSON()),
        )
        async with engine.begin() as connection:
            for n in range(1, 1 + 3):
                await connection.execute(
                    old.insert().values(
                        at=time.time(),
                        actor="cli:root",
                        action="create",
                        object_type="tenant",
                        object_id=f"ten_{n}",
                        after={"name": f"t{n}", "weight": 2.0},
                    )
                )
        assert await upgrade_engine(engine, database.url) is True
        assert await current_revision(engine) == HEAD
        report = await audit_chain.verify(engine)
        assert report.intact and report.entries == 3
        await append(database, entry(4))  # and the chain goes on from there
        report = await audit_chain.verify(engine)
        assert report.intact and report.entries == 4
        async with engine.connect() as connection:
            rows = (await connection.execute(sa.select(audit_log).order_by(audit_log.c.id))).all()
        assert [(row.seq, row.object_id) for row in rows[:3]] == [
            (1, "ten_1"),
            (2, "ten_2"),
            (3, "ten_3"),
        ]
    finally:
        await database.close()

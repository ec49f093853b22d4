"""Usage records on SQLite and PostgreSQL: batch inserts, grouped sums, and the background writer
(batching, a bounded queue that drops without blocking, flush on close, a failing database)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gatewise.store import migrations, sqlite_appender
from gatewise.store.engine import Database, make_engine
from gatewise.store.tables import usage
from gatewise.store.usage import (
    UsageRecord,
    UsageRepository,
    UsageRow,
    parse_moment,
    parse_status,
    period,
)
from gatewise.store.usage_writer import UsageWriter
from tests.integration.pg import Backend, started_database

T0 = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with started_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
async def repository(database: Database) -> AsyncIterator[UsageRepository]:
    repository = UsageRepository(database)
    yield repository
    await repository.close()


def record(n: int = 0, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "request_id": f"req-{n}",
        "at": T0 + n,
        "model": "gpt-4o-mini",
        "operation": "chat",
        "status": 200,
        "tenant_id": "ten_a",
        "key_id": f"key-{n}",  # one rollup row per record unless a test says otherwise
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_micros": 7,
    }
    return UsageRecord(**{**values, **fields})


async def rows_in(database: Database) -> list[dict[str, Any]]:
    async with database.engine.connect() as connection:
        result = await connection.execute(sa.select(usage).order_by(usage.c.id))
        return [dict(row) for row in result.mappings()]


@contextmanager
def inserts_counted(database: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The rows of every INSERT INTO usage sent: through the engine (PostgreSQL), or by the
    SQLite appender's own connection (traced; it connects on its first insert)."""
    sizes: list[int] = []

    def count(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO USAGE"):
            # Rows per statement: executemany's parameter sets, or a multi-row VALUES list.
            sizes.append(len(params) if many else statement.count("), (") + 1)

    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.set_trace_callback(lambda sql: count(None, None, sql, (), None, False))
        return connection

    monkeypatch.setattr(sqlite_appender.sqlite3, "connect", traced)
    engine = database.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield sizes
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


# --- the repository ---------------------------------------------------------------------------


async def test_records_are_summed_per_minute_and_key(
    database: Database, repository: UsageRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = UsageRecord(
        request_id="req-full",
        at=T0 + 0.25,
        tenant_id="ten_a",
        team_id="team_1",
        app_id="app_1",
        user_id="usr_1",
        key_id="key_1",
        model="claude-sonnet",
        provider="anthropic",
        operation="messages",
        stream=True,
        status=200,
        prompt_tokens=1_234_567_890_123,
        completion_tokens=2,
        cached_tokens=3,
        cost_micros=None,
        usage_estimated=True,
        duration_ms=12.5,
    )
    same_minute = full._replace(at=T0 + 59.5, prompt_tokens=7, cost_micros=40, duration_ms=0.5)
    next_minute = full._replace(at=T0 + 60)
    refused = full._replace(status=429)
    with inserts_counted(database, monkeypatch) as sizes:
        await repository.insert_many([full, same_minute, next_minute, refused, record(1)])
        await repository.insert_many([])
    assert sizes == [4]  # one INSERT, four rows
    rows = await rows_in(database)
    assert {k: v for k, v in rows[0].items() if k != "id"} == {
        "request_id": None,
        "at": T0,
        "tenant_id": "ten_a",
        "team_id": "team_1",
        "app_id": "app_1",
        "user_id": "usr_1",
        "key_id": "key_1",
        "model": "claude-sonnet",
        "provider": "anthropic",
        "operation": "messages",
        "stream": True,
        "status": 200,
        "usage_estimated": True,
        "requests": 2,
        "prompt_tokens": 1_234_567_890_130,
        "completion_tokens": 4,
        "cached_tokens": 6,
        "cost_micros": 40,  # the priced call's cost ...
        "cost_unknown": 1,  # ... and the other one counted apart
        "duration_ms": 13.0,
    }
    later, other_status, plain = rows[1:]
    assert (later["at"], later["requests"], later["cost_micros"], later["cost_unknown"]) == (
        T0 + 60,
        1,
        None,
        1,
    )
    assert (other_status["status"], other_status["at"], other_status["requests"]) == (429, T0, 1)
    assert (plain["key_id"], plain["cost_micros"], plain["cost_unknown"]) == ("key-1", 7, 0)
    assert plain["stream"] is False


async def test_summary_sums_and_groups(repository: UsageRepository) -> None:
    await repository.insert_many(
        [
            record(0, model="a", key_id="k1", team_id="t1", cost_micros=1_500_000),
            record(1, model="a", key_id="k1", team_id="t1", cost_micros=2),
            record(2, model="b", key_id="k2", cost_micros=None, completion_tokens=100),
            record(3, model="b", key_id="k2", tenant_id="ten_b", cost_micros=10_000_000_000),
            record(4, model="a", key_id="k1", status=429, prompt_tokens=0, completion_tokens=0),
            record(-10, model="a"),  # before the window
            record(120, model="a"),  # its minute starts at the window's end: excluded
        ]
    )
    by_model = await repository.summary("model", T0, T0 + 100)
    assert by_model == [
        UsageRow("a", 2, 20, 10, 1_500_009, 0, refused=1),  # the 429 is no request
        UsageRow("b", 2, 20, 105, 10_000_000_000, 1),
    ]
    assert by_model[0].total_tokens == 30 and by_model[0].cost_usd == "1.500009"
    assert by_model[1].cost_usd == "10000.000000"

    only_a = await repository.summary("model", T0, T0 + 100, tenant_id="ten_a")
    assert only_a == [
        UsageRow("a", 2, 20, 10, 1_500_009, 0, refused=1),
        UsageRow("b", 1, 10, 100, 0, 1),
    ]
    by_team = await repository.summary("team", T0, T0 + 100)
    assert [(r.group, r.requests) for r in by_team] == [("t1", 2), (None, 2)]
    by_tenant = await repository.summary("tenant", T0, T0 + 5)
    assert [(r.group, r.requests) for r in by_tenant] == [("ten_a", 3), ("ten_b", 1)]
    assert await repository.summary("key", T0 + 60, T0 + 120) == []
    # A minute that overlaps the window counts whole.
    assert await repository.summary("model", T0 + 59, T0 + 60) == by_model
    with pytest.raises(ValueError, match="group_by"):
        await repository.summary("colour", T0, T0 + 1)  # type: ignore[arg-type]


async def test_refused_calls_are_counted_apart_and_by_status(repository: UsageRepository) -> None:
    """A call limits, budgets or access turned away (403/429, no upstream) is not a request:
    reports count it as refused, and can filter and group by status."""
    free = {"prompt_tokens": 0, "completion_tokens": 0, "cost_micros": 0}
    await repository.insert_many(
        [
            record(0, model="a", provider="openai"),  # answered by the upstream
            record(1, model="a", provider="openai", status=429),  # the upstream's own 429
            record(2, model="a", status=200),  # answered by the gateway (a cache hit)
            record(3, model="a", status=429, **free),  # a rate limit or budget
            record(4, model="a", status=429, **free),
            record(5, model="a", status=403, **free),  # access
            record(6, model="b", status=403, key_id="key-5", **free),
        ]
    )
    by_model = await repository.summary("model", T0, T0 + 60)
    assert [(r.group, r.requests, r.refused) for r in by_model] == [("a", 3, 3), ("b", 0, 1)]
    assert by_model[0].as_dict()["refused"] == 3
    by_status = await repository.summary("status", T0, T0 + 60)
    assert [(r.group, r.requests, r.refused) for r in by_status] == [
        ("200", 2, 0),
        ("403", 0, 2),
        ("429", 1, 2),
    ]
    refused = await repository.summary("model", T0, T0 + 60, status=parse_status("refused"))
    assert [(r.group, r.requests, r.refused) for r in refused] == [("a", 0, 3), ("b", 0, 1)]
    admitted = await repository.summary("key", T0, T0 + 60, status=parse_status("admitted"))
    assert sum(r.requests for r in admitted) == 3 and sum(r.refused for r in admitted) == 0
    some = await repository.summary("model", T0, T0 + 60, status=parse_status("2xx, 403"))
    assert [(r.group, r.requests, r.refused) for r in some] == [("a", 2, 1), ("b", 0, 1)]
    for wrong in ("", "6xx", "42", "refused,maybe"):
        with pytest.raises(ValueError, match="admitted, refused"):
            parse_status(wrong)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_rows_from_before_rollups_still_count_one_call_each(
    kind: str, tmp_path: Path
) -> None:
    """Revision 0004 turns the per-call table into rollups: rows written before it are
    one call each, and a call that had no price still counts as unpriced."""
    backend = Backend(kind, tmp_path)
    await backend.setup()
    database = backend.database()
    old_engine = make_engine(backend.url, backend.connect_args)
    try:
        async with old_engine.connect() as connection:
            await connection.run_sync(lambda c: migrations._run_alembic(c, "0003"))
            old = "INSERT INTO usage (request_id, at, tenant_id, model, operation, stream, "
            old += "status, prompt_tokens, completion_tokens, cached_tokens, cost_micros, "
            old += "usage_estimated, duration_ms) VALUES (:r, :at, 'ten_a', 'm', 'chat', "
            old += "false, 200, 10, 5, 0, :cost, false, 1.0)"
            for n, cost in enumerate([3, None, 4]):
                await connection.execute(sa.text(old), {"r": f"req-{n}", "at": T0, "cost": cost})
            await connection.commit()
        await old_engine.dispose()
        await database.start()  # migrates to the head revision
        repository = UsageRepository(database)
        await repository.insert_many([record(0, model="m"), record(1, model="m")])
        await repository.close()
        assert await repository.summary("model", T0, T0 + 60) == [UsageRow("m", 5, 50, 25, 21, 1)]
    finally:
        await database.close()
        await backend.teardown()


# --- the writer -------------------------------------------------------------------------------


async def test_writer_batches_many_records_into_few_inserts(
    database: Database, repository: UsageRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = UsageWriter(repository, batch_size=100, flush_interval=60)
    writer.start()
    with inserts_counted(database, monkeypatch) as sizes:
        assert all(writer.submit(record(n)) for n in range(250))
        # Two full batches go at once (no waiting for the 60 s tick); the rest waits.
        await until(lambda: writer.written == 200)
        assert writer.queued == 50
        await writer.close()
    assert sizes == [100, 100, 50]
    assert (writer.written, writer.dropped, writer.failed) == (250, 0, 0)
    assert [row["key_id"] for row in await rows_in(database)] == [f"key-{n}" for n in range(250)]


async def test_writer_flushes_a_partial_batch_on_its_interval(
    database: Database, repository: UsageRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = UsageWriter(repository, batch_size=100, flush_interval=0.05)
    writer.start()
    try:
        with inserts_counted(database, monkeypatch) as sizes:
            for n in range(3):
                writer.submit(record(n))
            await until(lambda: writer.written == 3)
        assert sizes == [3]
    finally:
        await writer.close()


async def test_a_full_queue_drops_without_blocking(
    database: Database, repository: UsageRepository, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [0.0]
    writer = UsageWriter(repository, max_queue=10, batch_size=4, clock=lambda: clock[0])
    caplog.set_level(logging.WARNING, logger="gatewise.usage")
    # Not started and never awaited in between: submit alone must refuse the overflow.
    started = time.perf_counter()
    accepted = [writer.submit(record(n)) for n in range(15)]
    elapsed = time.perf_counter() - started
    assert accepted == [True] * 10 + [False] * 5 and writer.dropped == 5
    assert elapsed < 1.0  # no waiting for room (a generous bound: the machine may be busy)
    warnings = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(warnings) == 1  # at most one warning per 10 s
    clock[0] = 10.0
    writer.submit(record(99))
    warnings = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(warnings) == 2 and "5 since the last warning" in warnings[1].getMessage()

    await writer.close()  # never started: close still writes everything queued
    assert writer.written == 10 and len(await rows_in(database)) == 10
    assert writer.submit(record(100)) is False and writer.dropped == 7


async def test_close_flushes_everything_queued(
    database: Database, repository: UsageRepository
) -> None:
    writer = UsageWriter(repository, batch_size=64, flush_interval=3600)
    writer.start()
    for n in range(1000):
        writer.submit(record(n))
    await writer.close()
    assert writer.written == 1000 and writer.queued == 0
    assert len(await rows_in(database)) == 1000


async def drop_table(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.run_sync(lambda c: usage.drop(c))


async def create_table(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.run_sync(lambda c: usage.create(c))


async def test_a_failing_database_keeps_the_batch_until_it_recovers(
    database: Database, repository: UsageRepository, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="gatewise.usage")
    await drop_table(database)
    writer = UsageWriter(
        repository, batch_size=10, flush_interval=0.01, max_retries=1000, retry_delay=0.01
    )
    writer.start()
    try:
        for n in range(25):
            writer.submit(record(n))
        await until(lambda: len(caplog.records) >= 3)  # failing and retrying
        assert writer.written == 0 and writer.failed == 0
        await create_table(database)
        await until(lambda: writer.written == 25)
    finally:
        await writer.close()
    assert writer.failed == 0
    assert sorted(row["key_id"] for row in await rows_in(database)) == sorted(
        f"key-{n}" for n in range(25)
    )
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "will retry" in messages and database.url.split("@")[0] not in messages


async def test_close_makes_a_last_attempt_then_gives_up(
    database: Database, repository: UsageRepository
) -> None:
    await drop_table(database)
    writer = UsageWriter(repository, batch_size=5, flush_interval=0.01, retry_delay=60)
    writer.start()
    for n in range(12):
        writer.submit(record(n))
    await until(lambda: writer.queued < 12)  # the first batch is failing, in its backoff
    started = time.monotonic()
    await writer.close()  # cuts the 60 s backoff short: one attempt per batch, no hang
    assert time.monotonic() - started < 5
    assert (writer.written, writer.failed) == (0, 12)


async def test_close_writes_a_failing_batch_that_recovered(
    database: Database, repository: UsageRepository
) -> None:
    await drop_table(database)
    writer = UsageWriter(repository, batch_size=5, flush_interval=0.01, retry_delay=60)
    writer.start()
    for n in range(7):
        writer.submit(record(n))
    await until(lambda: writer.queued < 7)
    await create_table(database)
    await writer.close()
    assert (writer.written, writer.failed) == (7, 0)
    assert len(await rows_in(database)) == 7


# --- reporting windows ------------------------------------------------------------------------


def test_moments_and_periods() -> None:
    assert parse_moment("1764547200") == 1764547200.0
    assert parse_moment("2025-12-01") == 1764547200.0
    assert parse_moment("2025-12-01T01:00:00Z") == 1764547200.0 + 3600
    assert parse_moment("2025-12-01T02:00:00+01:00") == 1764547200.0 + 3600
    for bad in ("yesterday", "nan", "inf", ""):
        with pytest.raises(ValueError):
            parse_moment(bad)
    assert period(None, None, now=100_000_000.0) == (100_000_000.0 - 30 * 86400, 100_000_000.0)
    assert period(5.0, None, now=10.0) == (5.0, 10.0)
    assert period(None, 3_000_000.0, now=0.0) == (3_000_000.0 - 30 * 86400, 3_000_000.0)
    with pytest.raises(ValueError):
        period(10.0, 10.0, now=0.0)

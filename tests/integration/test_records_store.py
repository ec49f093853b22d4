"""Request records in real databases: COPY into day partitions made ahead (PostgreSQL),
multi-row inserts (SQLite), filters and pages, retention (whole partitions dropped, a
tenant's shorter retention deleted row by row), and the writer spilling while the
database is gone and replaying once it is back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gatewise.core.context import RequestContext
from gatewise.observe.records import prepare
from gatewise.store.records import COLUMNS, DAY, RecordFilter, RecordsRepository, day_name
from gatewise.store.records_spill import SpillFiles
from gatewise.store.records_writer import RecordsWriter
from tests.integration.pg import Backend, started_database

pytestmark = pytest.mark.asyncio
BACKENDS = pytest.mark.parametrize("kind", ["sqlite", "postgresql"])


def row(n: int, at: float, **fields: Any) -> tuple[Any, ...]:
    values: dict[str, Any] = dict.fromkeys(COLUMNS)
    values.update(
        id=f"req_{n}", at=at, tenant_id="ten_a", key_id="key_a", front_door="openai",
        operation="chat", method="POST", path="/v1/chat/completions", model="gpt-4o-mini",
        stream=False, status=200, duration_ms=12.5, prompt_tokens=10, completion_tokens=2,
        cached_tokens=0, usage_estimated=False, privacy="off", user_agent="OpenAI/Python",
    )  # fmt: skip
    values.update(fields)
    return tuple(values[name] for name in COLUMNS)


@BACKENDS
async def test_insert_then_filter_and_page(kind: str, tmp_path: Path) -> None:
    now = time.time()
    async with started_database(kind, tmp_path) as database:
        repository = RecordsRepository(database)
        rows = [row(n, now - n) for n in range(30)]
        rows += [
            row(100, now - 5, tenant_id="ten_b", key_id="key_b", status=429, model="claude"),
            row(101, now - 6, status=503, error_type="upstream_error",
                request_body="user: where is my parcel", privacy="full"),
            row(102, now - 3 * DAY, attempts='[{"provider": "up"}]', decisions='["retry:1:50ms"]'),
        ]  # fmt: skip
        await repository.insert(rows)
        page = await repository.page(RecordFilter(tenant_id="ten_a"), limit=10, offset=0)
        assert page.total == 32 and len(page.items) == 10
        assert [item["id"] for item in page.items[:3]] == ["req_0", "req_1", "req_2"]  # newest
        second = await repository.page(RecordFilter(tenant_id="ten_a"), limit=10, offset=30)
        assert [item["id"] for item in second.items] == ["req_29", "req_102"]
        assert "request_body" not in second.items[0]  # lists leave the bodies out

        async def ids(**where: Any) -> set[str]:
            found = await repository.page(RecordFilter(**where), limit=200, offset=0)
            return {item["id"] for item in found.items}

        assert await ids(statuses=((500, 599),)) == {"req_101"}
        assert await ids(statuses=((429, 429), (500, 599))) == {"req_100", "req_101"}
        assert await ids(key_id="key_b") == {"req_100"}
        assert await ids(model="claude") == {"req_100"}
        assert await ids(text="PARCEL") == {"req_101"}  # bodies, case-insensitive
        assert await ids(text="upstream_err") == {"req_101"}
        assert await ids(text="100%") == set()  # wildcards are literal
        assert await ids(since=now - 2 * DAY, until=now - 25) == {f"req_{n}" for n in range(26, 30)}
        one = await repository.get("req_102")
        assert one is not None and one["attempts"] == [{"provider": "up"}]
        assert one["decisions"] == ["retry:1:50ms"]
        assert await repository.get("req_nope") is None
        await repository.close()


async def test_postgres_copies_into_day_partitions_made_ahead(tmp_path: Path) -> None:
    now = time.time()
    today = int(now // DAY)
    async with started_database("postgresql", tmp_path) as database:
        repository = RecordsRepository(database)
        await repository.insert([row(1, now), row(2, now - 2 * DAY)])
        async with database.engine.connect() as connection:
            names = {
                name
                for (name,) in await connection.execute(
                    sa.text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                        " WHERE i.inhparent = 'request_records'::regclass"
                    )
                )
            }
            in_default = (
                await connection.execute(sa.text("SELECT count(*) FROM request_records_default"))
            ).scalar_one()
            where = await connection.execute(
                sa.text("SELECT tableoid::regclass::text FROM request_records WHERE id = 'req_1'")
            )
            partition = where.scalar_one()
        expected = {day_name(day) for day in range(today - 2, today + 3)}
        assert expected <= names
        assert in_default == 0 and partition == day_name(today)


@BACKENDS
async def test_purge_keeps_each_tenant_its_own_retention(kind: str, tmp_path: Path) -> None:
    now = time.time()
    async with started_database(kind, tmp_path) as database:
        repository = RecordsRepository(database)
        rows = [
            row(1, now - 1, tenant_id="short"),
            row(2, now - 3 * DAY, tenant_id="short"),  # past short's 2 days
            row(3, now - 3 * DAY, tenant_id="other"),  # default 7 days: kept
            row(4, now - 9 * DAY, tenant_id="other"),  # past the default
            row(5, now - 9 * DAY, tenant_id="long"),  # long keeps 20 days
            row(6, now - 9 * DAY, tenant_id=None),  # no tenant: the default
            row(7, now - 25 * DAY, tenant_id="long"),  # past every retention
        ]
        await repository.insert(rows)
        result = await repository.purge(now, 7, {"short": 2, "long": 20})
        left = await repository.page(RecordFilter(), limit=50, offset=0)
        assert sorted(item["id"] for item in left.items) == ["req_1", "req_3", "req_5"]
        assert result.rows_deleted >= (3 if kind == "postgresql" else 4)
        if kind == "postgresql":
            assert result.partitions_dropped >= 1  # day -25's partition, dropped whole
            again = await repository.purge(now, 7, {"short": 2, "long": 20})
            assert (again.partitions_dropped, again.rows_deleted) == (0, 0)


@BACKENDS
async def test_writer_spills_while_the_database_is_down_and_replays_when_back(
    kind: str, tmp_path: Path
) -> None:
    """The database goes away under a running writer (closed: every insert fails), records
    go to the spill file; once it is back the writer replays them: none lost, none twice."""
    backend = Backend(kind, tmp_path)
    await backend.setup()
    database = backend.database()
    await database.start()
    try:
        repository = RecordsRepository(database)
        spill = SpillFiles(tmp_path / "spill")
        writer = RecordsWriter(repository, prepare, batch_size=50, flush_interval=0.05,
                               spill=spill, max_retries=0)  # fmt: skip
        writer.start()
        await database.close()  # unreachable from now on
        now = time.time()
        raws = [_raw(n, now) for n in range(120)]
        for raw in raws:
            writer.submit(raw)
        await asyncio.sleep(0.5)
        assert writer.spilled == 120 and writer.written == 0
        await database.start()
        writer.replay_soon()
        for _ in range(50):
            if writer.replayed == 120:
                break
            await asyncio.sleep(0.1)
        await writer.close()
        page = await repository.page(RecordFilter(), limit=200, offset=0)
        assert page.total == 120
        assert {item["id"] for item in page.items} == {f"req_{n}" for n in range(120)}
        await repository.close()
    finally:
        await database.close()
        await backend.teardown()


def _raw(n: int, now: float) -> tuple[Any, ...]:
    prepared = row(n, now)
    raw = list(prepared)
    index = COLUMNS.index
    raw[index("prompt_tokens")] = None  # no usage
    raw[index("attempts")] = []
    raw[index("guardrails")] = []
    raw[index("decisions")] = []
    raw[index("user_agent")] = b"OpenAI/Python"
    ctx = RequestContext(prepared[0])  # the observer hands the context: the trace id is
    if prepared[index("trace_id")]:  # read from it off the hot path
        ctx.trace_id = prepared[index("trace_id")]
    raw[index("trace_id")] = ctx
    return tuple(raw)

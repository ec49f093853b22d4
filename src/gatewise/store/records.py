"""Request records in the records database: batch inserts, queries, retention.

Rows reach ``insert`` in batches from the background writer (``records_writer``),
already prepared (``prepare``): JSON columns as text, strings cut to their
columns' sizes. On PostgreSQL a batch goes in with one ``COPY`` (asyncpg's
binary ``copy_records_to_table``: about 10x fewer CPU cycles per row than a
multi-row ``INSERT``) into the day partitions the repository creates ahead of
the rows that need them (``ensure_partitions``); SQLite takes multi-row
INSERTs (a file through its own appender thread, ``SQLiteAppender``).

Retention (``purge``): on PostgreSQL whole day partitions older than the
longest retention are dropped (no row-by-row delete over tens of millions of
rows); tenants kept for less have their older rows deleted.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from gatewise.store.engine import Database
from gatewise.store.identity_base import Page
from gatewise.store.sqlite_appender import SQLiteAppender
from gatewise.store.tables import PARTITION_PREFIX, request_records
from gatewise.store.urls import sqlite_path

log = logging.getLogger("gatewise.records")

TABLE = request_records.name
#: The columns, in the order of a record's tuple (``observe.records`` builds them so).
COLUMNS: tuple[str, ...] = tuple(column.name for column in request_records.c)
DAY = 86_400
#: Day partitions made ahead of today (a worker that runs for days makes more as it goes).
DAYS_AHEAD = 2
_PARTITION = re.compile(rf"^{PARTITION_PREFIX}(\d{{8}})$")
#: Columns the text filter searches (a case-insensitive substring).
_TEXT_COLUMNS = ("model", "path", "error_type", "user_agent", "request_body", "response_body")
#: What a list shows of a record (the bodies only in the one record's view).
_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))")
LIST_COLUMNS = tuple(name for name in COLUMNS if name not in ("request_body", "response_body"))


def day_name(day: int) -> str:
    """The partition of day ``day`` (days since the epoch, UTC): ``request_records_20261206``."""
    date = datetime.date(1970, 1, 1) + datetime.timedelta(days=day)
    return f"{PARTITION_PREFIX}{date:%Y%m%d}"


def day_of(name: str) -> int | None:
    found = _PARTITION.match(name)
    if found is None:
        return None
    date = datetime.datetime.strptime(found.group(1), "%Y%m%d").date()
    return (date - datetime.date(1970, 1, 1)).days


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """What a list of records is narrowed to (None: any)."""

    tenant_id: str | None = None
    key_id: str | None = None
    model: str | None = None
    statuses: tuple[tuple[int, int], ...] = ()  # inclusive ranges, any of them
    since: float | None = None
    until: float | None = None
    text: str | None = None


def parse_statuses(text: str) -> tuple[tuple[int, int], ...]:
    """``200``, ``4xx`` or a comma-separated list of them; ``ValueError`` with a message
    fit for users."""
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        word = part.strip().lower()
        if len(word) == 3 and word[0] in "12345" and word[1:] == "xx":
            start = int(word[0]) * 100
            ranges.append((start, start + 99))
        elif len(word) == 3 and word.isdigit() and word[0] in "12345":
            ranges.append((int(word), int(word)))
        else:
            raise ValueError(f"{part.strip()!r} is not a status (429) or a class (4xx)")
    return tuple(ranges)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    partitions_dropped: int
    rows_deleted: int


class RecordsRepository:
    """Request records: ``insert`` batches of prepared rows, ``page`` and ``get`` for the
    admin API, ``purge`` for retention."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._sqlite_file = sqlite_path(database.url)
        self._appender: SQLiteAppender | None = None
        self._days: set[int] | None = None  # days with a partition (PostgreSQL)
        self._insert_sql: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.database.engine.dialect.name == "postgresql"

    # --- writing ----------------------------------------------------------------------

    async def insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """All ``rows`` (prepared, in ``COLUMNS`` order), in one transaction."""
        if not rows:
            return
        if self.is_postgres:
            await self._copy(rows)
            return
        if self._sqlite_file is not None:
            if self._appender is None:
                # Binding a statement's parameters holds the GIL (35 a row): 50 rows a
                # statement keeps each hold well under a millisecond.
                self._appender = SQLiteAppender(
                    self._sqlite_file, TABLE, COLUMNS, rows_per_statement=50
                )
            await self._appender.append(rows)
            return
        if self._insert_sql is None:
            marks = ", ".join("?" * len(COLUMNS))
            self._insert_sql = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({marks})"
        async with self.database.engine.begin() as connection:
            await connection.exec_driver_sql(self._insert_sql, list(rows))

    async def _copy(self, rows: Sequence[tuple[Any, ...]]) -> None:
        at = COLUMNS.index("at")
        first = int(min(row[at] for row in rows) // DAY)
        last = int(max(row[at] for row in rows) // DAY)
        if self._days is None or any(day not in self._days for day in range(first, last + 1)):
            await self.ensure_partitions(first, last + DAYS_AHEAD)
        async with self.database.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.copy_records_to_table(TABLE, records=rows, columns=COLUMNS)

    async def ensure_partitions(self, first: int, last: int) -> list[str]:
        """Make the day partitions of days ``first``..``last`` that do not exist (PostgreSQL;
        one worker at a time, by an advisory lock). Returns the names made."""
        made: list[str] = []
        async with self.database.engine.begin() as connection:
            await connection.execute(_LOCK, {"name": TABLE})
            days = set(await _partition_days(connection))
            for day in range(first, last + 1):
                if day in days:
                    continue
                name = day_name(day)
                try:
                    async with connection.begin_nested():
                        await connection.exec_driver_sql(
                            f"CREATE TABLE {name} PARTITION OF {TABLE} "
                            f"FOR VALUES FROM ({day * DAY}) TO ({(day + 1) * DAY})"
                        )
                except sa.exc.DBAPIError as exc:
                    # The default partition already holds rows of that day: they stay there.
                    log.warning("request records: partition %s not made: %s", name, exc.orig)
                    days.add(day)
                    continue
                days.add(day)
                made.append(name)
        self._days = days
        return made

    async def close(self) -> None:
        appender, self._appender = self._appender, None
        if appender is not None:
            await appender.close()

    # --- reading ----------------------------------------------------------------------

    async def page(self, where: RecordFilter, limit: int, offset: int) -> Page[dict[str, Any]]:
        """Records matching ``where``, newest first, and how many match in all."""
        conditions = _conditions(where)
        c = request_records.c
        statement = (
            sa.select(*(c[name] for name in LIST_COLUMNS))
            .where(*conditions)
            .order_by(c.at.desc(), c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        count = sa.select(sa.func.count()).select_from(request_records).where(*conditions)
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
            total = (await connection.execute(count)).scalar_one()
        return Page([dict(row) for row in rows], int(total), limit, offset)

    async def get(self, record_id: str) -> dict[str, Any] | None:
        statement = sa.select(request_records).where(request_records.c.id == record_id).limit(1)
        async with self.database.engine.connect() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return None if row is None else dict(row)

    # --- retention --------------------------------------------------------------------

    async def purge(
        self, now: float, default_days: int, tenant_days: Mapping[str, int]
    ) -> PurgeResult:
        """Remove what is past its retention: ``default_days`` for every record, or the
        days of its tenant in ``tenant_days`` (tenant id -> days)."""
        longest = max([default_days, *tenant_days.values()])
        oldest = now - longest * DAY
        dropped = 0
        c = request_records.c
        async with self.database.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(_LOCK, {"name": TABLE})
                for day in await _partition_days(connection):
                    if (day + 1) * DAY <= oldest:
                        await connection.exec_driver_sql(f"DROP TABLE {day_name(day)}")
                        dropped += 1
                self._days = None
            deleted = (
                await connection.execute(sa.delete(request_records).where(c.at < oldest))
            ).rowcount
            longer = [tenant for tenant, days in tenant_days.items() if days > default_days]
            if default_days < longest:
                kept = sa.or_(c.tenant_id.is_(None), c.tenant_id.not_in(longer))
                statement = sa.delete(request_records).where(c.at < now - default_days * DAY, kept)
                deleted += (await connection.execute(statement)).rowcount
            for tenant, days in tenant_days.items():
                if days < longest and days != default_days:
                    statement = sa.delete(request_records).where(
                        c.tenant_id == tenant, c.at < now - days * DAY
                    )
                    deleted += (await connection.execute(statement)).rowcount
        return PurgeResult(dropped, max(deleted, 0))


async def _partition_days(connection: Any) -> list[int]:
    result = await connection.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:name AS regclass)"
        ),
        {"name": TABLE},
    )
    days = [day_of(name) for (name,) in result.all()]
    return sorted(day for day in days if day is not None)


def _conditions(where: RecordFilter) -> list[sa.ColumnElement[bool]]:
    c = request_records.c
    found: list[sa.ColumnElement[bool]] = []
    if where.tenant_id is not None:
        found.append(c.tenant_id == where.tenant_id)
    if where.key_id is not None:
        found.append(c.key_id == where.key_id)
    if where.model is not None:
        found.append(c.model == where.model)
    if where.statuses:
        found.append(sa.or_(*(c.status.between(low, high) for low, high in where.statuses)))
    if where.since is not None:
        found.append(c.at >= where.since)
    if where.until is not None:
        found.append(c.at < where.until)
    if where.text:
        found.append(
            sa.or_(*(c[name].icontains(where.text, autoescape=True) for name in _TEXT_COLUMNS))
        )
    return found

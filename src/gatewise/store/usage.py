"""Usage records: one per model call, written in batches off the request path, summed on demand.

The request path only calls ``UsageWriter.submit``: a bounds check and an append,
never an await. A background task drains the queue in batches every
``flush_interval`` seconds, or sooner when a batch is full. The repository sums
each batch into per-minute rows (``rollup``) before one insert: reports group by
caller and model over time ranges, so a row per call would only make every call
pay for an insert (5-10 µs of CPU with the table's indexes).
A failing insert keeps its batch and retries with backoff, a bounded number of
times; ``close`` writes everything still queued, so a clean stop loses nothing.
With a spool (``usage_spool``), the records queued also go to a local file every
50 ms, and a start replays what a killed process left there: a ``kill -9`` loses
at most the last 50 ms of records. When the queue is full (the database is down
or too slow for the traffic), records are dropped and counted rather than
slowing the gateway down.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, get_args

import sqlalchemy as sa

from gatewise.store.engine import Database, describe_error
from gatewise.store.sqlite_appender import SQLiteAppender
from gatewise.store.tables import usage
from gatewise.store.urls import sqlite_path
from gatewise.store.usage_spool import SPOOL_INTERVAL, UsageSpool
from gatewise.store.usage_spool import available as spool_available
from gatewise.store.usage_spool import replay as spool_replay

log = logging.getLogger("gatewise.usage")

GroupBy = Literal["tenant", "team", "app", "key", "model", "status"]
GROUP_BYS: tuple[str, ...] = get_args(GroupBy)
_GROUP_COLUMNS: dict[str, sa.ColumnElement[Any]] = {
    "tenant": usage.c.tenant_id,
    "team": usage.c.team_id,
    "app": usage.c.app_id,
    "key": usage.c.key_id,
    "model": usage.c.model,
    "status": usage.c.status,
}
#: The statuses limits, budgets (429) and access (403) answer a call they turn away with.
#: Such a call without any upstream attempt (no ``provider``) is refused; every other
#: call is a request: it reached an upstream, or the gateway answered it itself.
REFUSED_STATUSES = (403, 429)
_REFUSED = sa.and_(usage.c.provider.is_(None), usage.c.status.in_(REFUSED_STATUSES))
#: The default reporting window of the API and the CLI.
DEFAULT_PERIOD = 30 * 86400.0
_WARN_EVERY = 10.0


class UsageRecord(NamedTuple):
    """One model call the gateway answered or refused after authentication.

    ``cost_micros`` is integer micro-USD, None when the model's price is unknown;
    ``usage_estimated`` says the token counts are the gateway's estimate (the
    upstream reported none, or the stream was cut). A tuple (built for every call,
    about three times cheaper than a dataclass), handed to the driver as is."""

    request_id: str
    at: float
    model: str
    operation: str
    status: int
    tenant_id: str | None = None
    team_id: str | None = None
    app_id: str | None = None
    user_id: str | None = None
    key_id: str | None = None
    provider: str | None = None
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_micros: int | None = None
    usage_estimated: bool = False
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class UsageRow:
    """The sums of one group (``group`` is None for records without that id, e.g. no team).

    ``requests`` counts the calls admitted (they reached an upstream, or the gateway
    answered them), ``refused`` those limits, budgets or access turned away."""

    group: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int
    cost_unknown_requests: int
    refused: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_usd(self) -> str:
        """The known cost as exact decimal dollars, e.g. ``"12.345678"``."""
        return usd(self.cost_micros)

    def as_dict(self) -> dict[str, str | int | None]:
        """The row as the API and ``gatewise usage --json`` show it (money as a string)."""
        return {
            "group": self.group,
            "requests": self.requests,
            "refused": self.refused,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": self.cost_usd,
            "cost_unknown_requests": self.cost_unknown_requests,
        }


def usd(micros: int) -> str:
    return f"{Decimal(micros).scaleb(-6):.6f}"


class UsageSink(Protocol):
    """Where the writer puts its batches (``UsageRepository``)."""

    async def insert_many(self, records: Sequence[UsageRecord]) -> None: ...


#: What a rollup row is keyed by: the minute (``at``), then these record fields.
_KEY_FIELDS = (
    "tenant_id",
    "team_id",
    "app_id",
    "user_id",
    "key_id",
    "model",
    "provider",
    "operation",
    "stream",
    "status",
    "usage_estimated",
)
#: A rollup row's columns, in the order ``rollup`` builds its tuples.
_COLUMNS = (
    "at",
    *_KEY_FIELDS,
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_micros",
    "cost_unknown",
    "duration_ms",
)
_MINUTE = 60
_record_key = attrgetter(*_KEY_FIELDS)


def rollup(records: Iterable[UsageRecord]) -> list[tuple[Any, ...]]:
    """The records summed per minute and key, as rows in ``_COLUMNS`` order.

    A row's ``at`` is the start of its minute (UTC epoch seconds); its cost sums the
    calls that had a price (None when none had) and ``cost_unknown`` counts the others.
    """
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for record in records:
        key = (record.at // _MINUTE * _MINUTE, *_record_key(record))
        cost = record.cost_micros
        found = sums.get(key)
        if found is None:
            sums[key] = [
                1,
                record.prompt_tokens,
                record.completion_tokens,
                record.cached_tokens,
                cost,
                1 if cost is None else 0,
                record.duration_ms,
            ]
            continue
        found[0] += 1
        found[1] += record.prompt_tokens
        found[2] += record.completion_tokens
        found[3] += record.cached_tokens
        if cost is None:
            found[5] += 1
        else:
            found[4] = cost if found[4] is None else found[4] + cost
        found[6] += record.duration_ms
    return [(*key, *values) for key, values in sums.items()]


class UsageRepository:
    """Usage rows in the records database: batches of records inserted as per-minute rollups,
    and grouped sums."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._sqlite_file = sqlite_path(database.url)  # None: PostgreSQL or in-memory SQLite
        self._insert: tuple[str, Callable[[tuple[Any, ...]], tuple[Any, ...]] | None] | None = None
        self._appender: SQLiteAppender | None = None

    async def insert_many(self, records: Sequence[UsageRecord]) -> None:
        """All ``records``, summed per minute (``rollup``), in one transaction.

        Rows go to the driver as plain tuples, never through SQLAlchemy's per-row
        parameter processing. A SQLite file gets them through its own appender thread
        (see ``SQLiteAppender``); PostgreSQL (and an in-memory SQLite) through the engine.
        """
        if not records:
            return
        rows = rollup(records)
        if self._sqlite_file is not None:
            if self._appender is None:
                self._appender = SQLiteAppender(self._sqlite_file, usage.name, _COLUMNS)
            await self._appender.append(rows)
            return
        engine = self.database.engine
        if self._insert is None:
            # The driver's positional parameters, in the order of ``_COLUMNS``.
            columns = ", ".join(_COLUMNS)
            values = ", ".join(f":{name}" for name in _COLUMNS)
            text = sa.text(f"INSERT INTO {usage.name} ({columns}) VALUES ({values})")
            compiled = text.compile(dialect=engine.dialect)
            order = [_COLUMNS.index(name) for name in compiled.positiontup or _COLUMNS]
            same = order == list(range(len(_COLUMNS)))
            self._insert = str(compiled), None if same else itemgetter(*order)
        sql, reorder = self._insert
        if reorder is not None:
            rows = [reorder(row) for row in rows]
        async with engine.begin() as connection:
            await connection.exec_driver_sql(sql, rows)

    async def close(self) -> None:
        """Stop the SQLite appender's thread (the engine is the ``Database``'s to close)."""
        appender, self._appender = self._appender, None
        if appender is not None:
            await appender.close()

    async def summary(
        self,
        group_by: GroupBy,
        since: float,
        until: float,
        tenant_id: str | None = None,
        status: StatusFilter | None = None,
    ) -> list[UsageRow]:
        """Sums per group over the minutes that overlap ``[since, until)`` (one tenant's rows
        when ``tenant_id``; only calls ``status`` matches when given)."""
        if group_by not in _GROUP_COLUMNS:
            raise ValueError(f"group_by: {group_by!r} is not one of {', '.join(GROUP_BYS)}")
        column = _GROUP_COLUMNS[group_by]
        c = usage.c
        statement = (
            sa.select(
                column,
                sa.func.sum(sa.case((_REFUSED, 0), else_=c.requests)),
                sa.func.sum(c.prompt_tokens),
                sa.func.sum(c.completion_tokens),
                sa.func.sum(c.cost_micros),
                sa.func.sum(c.cost_unknown),
                sa.func.sum(sa.case((_REFUSED, c.requests), else_=0)),
            )
            # A minute's rows count when the minute overlaps the window; rows from before
            # rollups (one call each, with its request id) when the call is inside it.
            .where(
                c.at > since - _MINUTE,
                c.at < until,
                sa.or_(c.at >= since, c.request_id.is_(None)),
            )
            .group_by(column)
        )
        if tenant_id is not None:
            statement = statement.where(c.tenant_id == tenant_id)
        if status is not None:
            statement = statement.where(status.condition)
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        # PostgreSQL sums BIGINT as NUMERIC (Decimal): make every figure an int.
        result = [
            UsageRow(
                None if row[0] is None else str(row[0]), *(int(value or 0) for value in row[1:])
            )
            for row in rows
        ]
        return sorted(result, key=lambda row: (row.group is None, row.group or ""))


@dataclass(frozen=True, slots=True)
class StatusFilter:
    """Which calls a report counts, by status: ``parse_status`` reads it."""

    text: str
    condition: sa.ColumnElement[bool]


def parse_status(text: str) -> StatusFilter:
    """A status filter from a comma-separated list of ``admitted``, ``refused``, a status
    (``429``) or a class of them (``4xx``); a call matching any of them counts. Raises
    ``ValueError`` with a message fit for users."""
    c = usage.c
    conditions: list[sa.ColumnElement[bool]] = []
    for part in text.split(","):
        word = part.strip().lower()
        if word == "refused":
            conditions.append(_REFUSED)
        elif word == "admitted":
            conditions.append(sa.not_(_REFUSED))
        elif len(word) == 3 and word[0] in "12345" and word[1:] == "xx":
            start = int(word[0]) * 100
            conditions.append(c.status.between(start, start + 99))
        elif len(word) == 3 and word.isdigit() and word[0] in "12345":
            conditions.append(c.status == int(word))
        else:
            raise ValueError(
                f"{part.strip()!r} is not admitted, refused, a status (429) or a class (4xx)"
            )
    return StatusFilter(text, sa.or_(*conditions))


# --- reporting windows ------------------------------------------------------------------------


def parse_moment(text: str) -> float:
    """Epoch seconds from ``1764547200`` or ISO-8601 (``2026-11-01``, ``...T10:00:00Z``).

    A time without a zone is UTC. Raises ``ValueError`` with a message fit for users."""
    value = text.strip()
    try:
        number = float(value)
    except ValueError:
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{text!r} is neither an ISO-8601 time (2026-11-01, 2026-11-01T10:00:00Z) "
                "nor epoch seconds"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number of epoch seconds")
    return number


def period(since: float | None, until: float | None, now: float) -> tuple[float, float]:
    """The window ``[since, until)``: by default it ends now and spans ``DEFAULT_PERIOD``."""
    end = now if until is None else until
    start = end - DEFAULT_PERIOD if since is None else since
    if start >= end:
        raise ValueError("must be before 'to'")
    return start, end


# --- the background writer --------------------------------------------------------------------


class UsageWriter:
    """Batches usage records into the database from a background task (see the module doc).

    A batch becomes a few rollup rows, so batches are large: a full one (5,000 records)
    goes before the interval only above 5,000 calls a second per process; each early
    flush costs a thread hand-off and a commit. The queue holds four batches (about 300
    bytes a record: ~6 MB while the database is down).

    ``spool``: a folder for the local write-ahead spool (``store.usage_spool``): records
    reach a file there within ``SPOOL_INTERVAL`` of ``submit``; the writer's task first
    replays what stopped processes left in it. New records wait in ``_fresh`` until they
    are spooled, then join the queue."""

    def __init__(
        self,
        repository: UsageSink,
        *,
        max_queue: int = 20_000,
        batch_size: int = 5_000,
        flush_interval: float = 1.0,
        max_retries: int = 5,
        retry_delay: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        spool: Path | None = None,
    ) -> None:
        if max_queue < 1 or batch_size < 1 or flush_interval <= 0 or max_retries < 0:
            raise ValueError("need max_queue, batch_size >= 1, flush_interval > 0, retries >= 0")
        self._repository = repository
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_retries = max_retries
        self._retry_delay = retry_delay
        self._clock = clock
        self._queue: deque[UsageRecord] = deque()
        self._fresh: list[UsageRecord] = []  # submitted, not yet spooled (with a spool)
        self._spool = UsageSpool(spool) if spool is not None and spool_available() else None
        self._spool_timer: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()  # a full batch is waiting, or close
        self._stop = asyncio.Event()  # close: cuts a retry's backoff short
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._last_warning = -math.inf
        self._unreported = 0
        #: Records refused by ``submit`` (queue full, or the writer closed).
        self.dropped = 0
        #: Records inserted.
        self.written = 0
        #: Records given up on after the insert failed every retry.
        self.failed = 0

    @property
    def queued(self) -> int:
        return len(self._queue) + len(self._fresh)

    def start(self) -> None:
        """Start the background task (call from inside the running event loop)."""
        if self._task is None and not self._closing:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-writer")

    def submit(self, record: UsageRecord) -> bool:
        """Queue ``record`` for writing; False (and a drop counted) when full or closed."""
        if self._spool is not None:
            fresh = self._fresh
            if self._closing or len(self._queue) + len(fresh) >= self._max_queue:
                self._drop()
                return False
            fresh.append(record)
            if self._spool_timer is None:
                self._spool_timer = asyncio.get_running_loop().call_later(
                    SPOOL_INTERVAL, self._spool_fresh
                )
            return True
        if self._closing or len(self._queue) >= self._max_queue:
            self._drop()
            return False
        self._queue.append(record)
        if len(self._queue) == self._batch_size:
            self._wake.set()
        return True

    def _spool_fresh(self) -> None:
        """Spool the records submitted since the last time (one write), then queue them."""
        self._spool_timer = None
        fresh = self._fresh
        if not fresh:
            return
        assert self._spool is not None
        self._spool.append(fresh)
        self._fresh = []
        queue = self._queue
        before = len(queue)
        queue.extend(fresh)
        if before < self._batch_size <= len(queue):
            self._wake.set()

    async def close(self) -> None:
        """Write everything still queued (a last attempt for a failing batch), then stop."""
        self._closing = True
        self._wake.set()
        self._stop.set()
        if self._task is not None:
            await self._task
        else:
            await self._drain()
            if self._spool is not None:
                self._spool.close()

    def _drop(self) -> None:
        self.dropped += 1
        self._unreported += 1
        now = self._clock()
        if now - self._last_warning >= _WARN_EVERY:
            reason = "the writer is closed" if self._closing else "the queue is full"
            log.warning(
                "usage records dropped: %d since the last warning (%s; %d queued)",
                self._unreported,
                reason,
                len(self._queue),
            )
            self._last_warning = now
            self._unreported = 0

    async def _run(self) -> None:
        if self._spool is not None:  # first what stopped processes left in the spool
            await spool_replay(self._spool.folder, self._replay, self._batch_size)
        while not self._closing:
            await _wait(self._wake, self._flush_interval)
            self._wake.clear()
            await self._drain()
        await self._drain()
        if self._spool is not None:
            self._spool.close()

    async def _replay(self, rows: list[tuple[Any, ...]]) -> None:
        records = [UsageRecord(*fields) for fields in rows]
        await self._repository.insert_many(records)
        self.written += len(records)

    async def _drain(self) -> None:
        """Write the queue batch by batch (on close: until it is empty)."""
        spool = self._spool
        if spool is not None:
            if self._spool_timer is not None:
                self._spool_timer.cancel()
            self._spool_fresh()  # everything taken below is in the spool, sealed
            spool.seal()
        while self._queue:
            count = min(self._batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            await self._write(batch)
            if spool is not None:
                spool.written(count)  # in the database (or given up on): off the spool
            if not self._closing and len(self._queue) < self._batch_size:
                return  # wait for a full batch or the next tick

    async def _write(self, batch: list[UsageRecord]) -> None:
        """Insert ``batch``, retrying with backoff; once closing, one last attempt only."""
        attempt = 0
        while True:
            try:
                await self._repository.insert_many(batch)
            except Exception as exc:  # any failure: the writer must outlive it
                attempt += 1
                final = self._closing or attempt > self._max_retries
                log.error(
                    "usage insert of %d records failed (attempt %d, %s): %s",
                    len(batch),
                    attempt,
                    "giving up" if final else "will retry",
                    describe_error(exc, limit=200),
                )
                if final:
                    self.failed += len(batch)
                    return
                # Backoff, cut short by ``close`` (which then makes the last attempt).
                await _wait(self._stop, min(self._retry_delay * 2 ** (attempt - 1), 30.0))
            else:
                self.written += len(batch)
                return


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set or ``seconds`` have passed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)

"""Usage records: one per model call, summed into per-minute rows, reported on demand.

The repository sums each batch of records into per-minute rows (``rollup``)
before one insert: reports group by caller and model over time ranges, so a row
per call would only make every call pay for an insert (5-10 µs of CPU with the
table's indexes). Records reach it in batches from the background writer
(``usage_writer``), off the request path.
"""

from __future__ import annotations

import datetime
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any, Literal, NamedTuple, Protocol, get_args

import sqlalchemy as sa

from gatewise.store.engine import Database
from gatewise.store.sqlite_appender import SQLiteAppender
from gatewise.store.tables import usage
from gatewise.store.urls import sqlite_path

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

"""Analytics for dashboards: usage and cost over time, top consumers, error rates, latency
percentiles and guardrail events, per time bucket and group.

Two sources. Money, tokens and request counts come from ``usage`` (per-minute rollups of
every model call, refused ones included): complete whatever the request records' sampling or
retention. What a rollup cannot hold comes from ``request_records`` (one row per request):
error types, latency distributions, guardrail verdicts.

Every answer is bounded before a query runs: at most ``MAX_BUCKETS`` buckets, ``MAX_GROUPS``
groups (the top ones of the window, found first) and ``MAX_POINTS`` points. Buckets are whole
UTC minutes, hours or days (``all``: the window as one bucket); the window is widened to whole
buckets (whole minutes for ``all``: usage is kept per minute), and the answer says so.
Buckets and groups without rows are left out. See ``analytics_sql`` for the engine-specific
SQL (time buckets, percentiles, JSON lists).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewise.store import analytics_sql as q
from gatewise.store.engine import Database
from gatewise.store.tables import request_records, usage
from gatewise.store.usage import REFUSED_STATUSES

Bucket = Literal["minute", "hour", "day", "all"]
BUCKETS: tuple[str, ...] = get_args(Bucket)
BUCKET_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
Dimension = Literal["tenant", "team", "app", "user", "key", "model", "provider"]
DIMENSIONS: tuple[str, ...] = get_args(Dimension)
Ranking = Literal["cost", "tokens", "requests"]
Measure = Literal["duration_ms", "first_byte_ms", "overhead_ms"]
MEASURES: tuple[Measure, ...] = get_args(Measure)
MAX_BUCKETS = 1500  # a day of minutes, two months of hours, four years of days
MAX_GROUPS = 100
MAX_POINTS = 50_000
MAX_ERROR_TYPES = 50
_COLUMN_OF = {"tenant": "tenant_id", "team": "team_id", "app": "app_id", "user": "user_id",
              "key": "key_id", "model": "model", "provider": "provider"}  # fmt: skip
Filters = Mapping[Dimension, str]


class AnalyticsError(ValueError):
    """A request that cannot be answered as asked; ``param`` names the parameter at fault."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class Window:
    """``[since, until)`` widened to whole buckets; ``Window.of`` checks the bucket count."""

    since: float
    until: float
    bucket: Bucket

    @property
    def size(self) -> int | None:
        return BUCKET_SECONDS.get(self.bucket)

    @classmethod
    def of(cls, since: float, until: float, bucket: Bucket, groups: int = 1) -> Window:
        if bucket not in BUCKETS:
            raise AnalyticsError("bucket", f"{bucket!r} is not one of {', '.join(BUCKETS)}")
        step = BUCKET_SECONDS.get(bucket, 60)
        start, end = math.floor(since / step) * step, math.ceil(until / step) * step
        if bucket != "all":
            count = (end - start) // step
            if count > MAX_BUCKETS:
                raise AnalyticsError(
                    "bucket",
                    f"the window holds {count} {bucket} buckets, at most {MAX_BUCKETS} are "
                    "answered: choose a coarser bucket or a shorter window",
                )
            if count * groups > MAX_POINTS:
                raise AnalyticsError(
                    "limit",
                    f"{count} buckets x {groups} groups is more than {MAX_POINTS} points: "
                    "ask for fewer groups, a coarser bucket or a shorter window",
                )
        return cls(float(start), float(end), bucket)

    def start_of(self, index: int | None) -> float:
        """The start of bucket ``index`` (None: the ``all`` bucket, the window's start)."""
        return self.since if index is None or self.size is None else float(index * self.size)


@dataclass(frozen=True, slots=True)
class Series:
    """Points in time order; ``truncated``: the window had more groups than were asked."""

    points: list[Any]
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class UsagePoint:
    at: float
    group: str | None
    requests: int
    refused: int
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int
    cost_unknown_requests: int


@dataclass(frozen=True, slots=True)
class ErrorPoint:
    at: float
    group: str | None
    requests: int
    errors: int  # answered with a status of 400 or more
    server_errors: int  # 500 or more


@dataclass(frozen=True, slots=True)
class ErrorTypeCount:
    error_type: str | None
    errors: int


@dataclass(frozen=True, slots=True)
class Percentiles:
    count: int
    values: tuple[float, ...]  # one per ``analytics_sql.PERCENTILES``


@dataclass(frozen=True, slots=True)
class LatencyPoint:
    at: float
    group: str | None
    requests: int
    measures: dict[str, Percentiles]  # only measures with samples


@dataclass(frozen=True, slots=True)
class GuardrailPoint:
    at: float
    guardrail: str | None
    category: str | None
    action: str | None
    events: int  # verdicts
    requests: int  # requests with at least one such verdict


def _column(table: sa.Table, dimension: str) -> sa.ColumnElement[Any]:
    if dimension not in _COLUMN_OF:
        raise AnalyticsError("group_by", f"{dimension!r} is not one of {', '.join(DIMENSIONS)}")
    return table.c[_COLUMN_OF[dimension]]


def _conditions(table: sa.Table, window: Window, filters: Filters) -> list[sa.ColumnElement[bool]]:
    at = table.c.at
    found = [at >= window.since, at < window.until]
    return found + [_column(table, name) == value for name, value in filters.items()]


_REFUSED = sa.and_(usage.c.provider.is_(None), usage.c.status.in_(REFUSED_STATUSES))
_ADMITTED = sa.func.sum(sa.case((_REFUSED, 0), else_=usage.c.requests))
_RANKINGS: dict[str, sa.ColumnElement[Any]] = {
    "cost": sa.func.sum(sa.func.coalesce(usage.c.cost_micros, 0)),
    "tokens": sa.func.sum(usage.c.prompt_tokens + usage.c.completion_tokens),
    "requests": _ADMITTED,
}
_USAGE_SUMS = (
    _ADMITTED,
    sa.func.sum(sa.case((_REFUSED, usage.c.requests), else_=0)),
    sa.func.sum(usage.c.prompt_tokens),
    sa.func.sum(usage.c.completion_tokens),
    sa.func.sum(usage.c.cost_micros),
    sa.func.sum(usage.c.cost_unknown),
)
_ERROR = request_records.c.status >= 400
_RECORD_COUNTS = (
    sa.func.count(),
    sa.func.sum(sa.case((_ERROR, 1), else_=0)),
    sa.func.sum(sa.case((request_records.c.status >= 500, 1), else_=0)),
)
#: Latency counts requests answered without an error: a refusal or a failure in a few ms
#: would pull the percentiles of real answers down.
_ANSWERED = request_records.c.status < 400


class Analytics:
    """The analytics queries over one records database (SQLite or PostgreSQL)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @property
    def _dialect(self) -> str:
        return self.database.engine.dialect.name

    def _keys(
        self, table: sa.Table, window: Window, group: sa.ColumnElement[Any] | None
    ) -> list[sa.ColumnElement[Any]]:
        """What a series groups by: the bucket (unless ``all``), then the group (if any)."""
        keys = []
        if window.size is not None:
            keys.append(q.bucket_index(self._dialect, table.c.at, window.size))
        if group is not None:
            keys.append(group)
        return keys

    def _split(self, window: Window, row: Sequence[Any], grouped: bool) -> tuple[float, Any]:
        """A row's bucket start and group (its first one or two columns)."""
        index = row[0] if window.size is not None else None
        group = row[1 if window.size is not None else 0] if grouped else None
        return window.start_of(index), None if group is None else str(group)

    async def _top_groups(
        self,
        connection: AsyncConnection,
        column: sa.ColumnElement[Any],
        conditions: list[sa.ColumnElement[bool]],
        order: sa.ColumnElement[Any],
        limit: int,
    ) -> tuple[sa.ColumnElement[bool], bool]:
        """A condition keeping the ``limit`` groups ranked first by ``order``, and whether
        there were more."""
        statement = (
            sa.select(column)
            .where(*conditions)
            .group_by(column)
            .order_by(order.desc(), column)
            .limit(limit + 1)
        )
        groups = [row[0] for row in await connection.execute(statement)]
        kept = groups[:limit]
        present = [group for group in kept if group is not None]
        condition: sa.ColumnElement[bool] = column.in_(present)
        if len(present) < len(kept):
            condition = sa.or_(condition, column.is_(None))
        return condition, len(groups) > limit

    # --- usage -------------------------------------------------------------------------------

    async def usage_series(
        self, window: Window, filters: Filters, group_by: Dimension | None, limit: int
    ) -> Series:
        """Requests, refusals, tokens and cost per bucket (and group: the ``limit`` groups
        that cost most in the window)."""
        group = None if group_by is None else _column(usage, group_by)
        conditions = _conditions(usage, window, filters)
        keys = self._keys(usage, window, group)
        async with self.database.engine.connect() as connection:
            truncated = False
            if group is not None:
                top, truncated = await self._top_groups(
                    connection, group, conditions, _RANKINGS["cost"] + _ADMITTED, limit
                )
                conditions.append(top)
            statement = sa.select(*keys, *_USAGE_SUMS).where(*conditions)
            if keys:
                statement = statement.group_by(*keys)
            rows = (await connection.execute(statement)).all()
        points = []
        for row in rows:
            at, name = self._split(window, row, group is not None)
            sums = [q.as_int(value) for value in row[len(keys) :]]
            if sums[0] or sums[1]:  # an empty window's one row of NULL sums
                points.append(UsagePoint(at, name, *sums))
        return Series(_ordered(points), truncated)

    async def top(
        self, window: Window, filters: Filters, group_by: Dimension, by: Ranking, limit: int
    ) -> list[UsagePoint]:
        """The ``limit`` groups first by cost, tokens or admitted requests in the window."""
        group = _column(usage, group_by)
        if by not in _RANKINGS:
            raise AnalyticsError("by", f"{by!r} is not one of {', '.join(_RANKINGS)}")
        order = _RANKINGS[by]
        statement = (
            sa.select(group, *_USAGE_SUMS)
            .where(*_conditions(usage, window, filters))
            .group_by(group)
            .order_by(order.desc(), group)
            .limit(limit)
        )
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [
            UsagePoint(window.since, _text(row[0]), *(q.as_int(value) for value in row[1:]))
            for row in rows
        ]

    # --- errors ------------------------------------------------------------------------------

    async def errors(
        self, window: Window, filters: Filters, group_by: Dimension | None, limit: int
    ) -> tuple[Series, list[ErrorTypeCount]]:
        """Requests and errors per bucket (and group: the ``limit`` groups with the most
        errors), and the window's errors per error type, most frequent first."""
        table = request_records
        group = None if group_by is None else _column(table, group_by)
        conditions = _conditions(table, window, filters)
        keys = self._keys(table, window, group)
        types = (
            sa.select(table.c.error_type, sa.func.count())
            .where(*conditions, _ERROR)
            .group_by(table.c.error_type)
            .order_by(sa.func.count().desc(), table.c.error_type)
            .limit(MAX_ERROR_TYPES)
        )
        async with self.database.engine.connect() as connection:
            truncated = False
            if group is not None:
                top, truncated = await self._top_groups(
                    connection, group, conditions, _RECORD_COUNTS[1], limit
                )
                conditions.append(top)
            statement = sa.select(*keys, *_RECORD_COUNTS).where(*conditions)
            if keys:
                statement = statement.group_by(*keys)
            rows = (await connection.execute(statement)).all()
            counted = (await connection.execute(types)).all()
        points = []
        for row in rows:
            at, name = self._split(window, row, group is not None)
            requests, errors, server = (q.as_int(value) for value in row[len(keys) :])
            if requests:
                points.append(ErrorPoint(at, name, requests, errors, server))
        by_type = [ErrorTypeCount(_text(row[0]), q.as_int(row[1])) for row in counted]
        return Series(_ordered(points), truncated), by_type

    # --- latency -----------------------------------------------------------------------------

    async def latency(
        self, window: Window, filters: Filters, group_by: Dimension | None, limit: int
    ) -> Series:
        """p50/p90/p99 of duration, time to first byte and gateway overhead per bucket (and
        group: the ``limit`` busiest), over requests answered without an error."""
        table = request_records
        group = None if group_by is None else _column(table, group_by)
        conditions = [*_conditions(table, window, filters), _ANSWERED]
        keys = self._keys(table, window, group)
        async with self.database.engine.connect() as connection:
            truncated = False
            if group is not None:
                top, truncated = await self._top_groups(
                    connection, group, conditions, sa.func.count(), limit
                )
                conditions.append(top)
            if self._dialect == "postgresql":
                found = await self._latency_pg(connection, keys, conditions)
            else:
                found = await self._latency_ranked(connection, keys, conditions)
        points = []
        for key, (requests, measures) in found.items():
            at, name = self._split(window, key, group is not None)
            points.append(LatencyPoint(at, name, requests, measures))
        return Series(_ordered(points), truncated)

    async def _latency_pg(
        self,
        connection: AsyncConnection,
        keys: list[sa.ColumnElement[Any]],
        conditions: list[sa.ColumnElement[bool]],
    ) -> dict[tuple[Any, ...], tuple[int, dict[str, Percentiles]]]:
        columns: list[sa.ColumnElement[Any]] = [sa.func.count()]
        for measure in MEASURES:
            column = request_records.c[measure]
            columns += [sa.func.count(column), q.percentiles_pg(column)]
        statement = sa.select(*keys, *columns).where(*conditions)
        if keys:
            statement = statement.group_by(*keys)
        found = {}
        for row in await connection.execute(statement):
            key, values = tuple(row[: len(keys)]), row[len(keys) :]
            if not values[0]:
                continue
            measures: dict[str, Percentiles] = {}
            for n, measure in enumerate(MEASURES):
                count, listed = values[1 + 2 * n], values[2 + 2 * n]
                if count:
                    measures[measure] = Percentiles(count, tuple(q.as_list(listed)))
            found[key] = (int(values[0]), measures)
        return found

    async def _latency_ranked(
        self,
        connection: AsyncConnection,
        keys: list[sa.ColumnElement[Any]],
        conditions: list[sa.ColumnElement[bool]],
    ) -> dict[tuple[Any, ...], tuple[int, dict[str, Percentiles]]]:
        counts = sa.select(*keys, sa.func.count()).where(*conditions)
        if keys:
            counts = counts.group_by(*keys)
        found: dict[tuple[Any, ...], tuple[int, dict[str, Percentiles]]] = {}
        for row in await connection.execute(counts):
            if row[-1]:
                found[tuple(row[:-1])] = (int(row[-1]), {})
        width = len(keys)
        for measure in MEASURES:
            value = request_records.c[measure]
            ranked = (
                sa.select(
                    *(key.label(f"k{n}") for n, key in enumerate(keys)),
                    value.label("v"),
                    sa.func.row_number().over(partition_by=keys or None, order_by=value).label("r"),
                    sa.func.count().over(partition_by=keys or None).label("n"),
                )
                .where(*conditions, value.is_not(None))
                .cte(f"ranked_{measure}")
            )
            rank, count = ranked.c.r, ranked.c.n
            wanted = sa.or_(*(rank == position for position in q.rank_positions(count)))
            picked = sa.select(*list(ranked.c)[:width], count, rank, ranked.c.v).where(wanted)
            values: dict[tuple[Any, ...], tuple[int, dict[int, float]]] = {}
            for row in await connection.execute(picked):
                key = tuple(row[:width])
                values.setdefault(key, (int(row[width]), {}))[1][int(row[width + 1])] = float(
                    row[width + 2]
                )
            for key, (count_of, by_rank) in values.items():
                if key in found:
                    found[key][1][measure] = Percentiles(count_of, q.interpolate(count_of, by_rank))
        return found

    # --- guardrails --------------------------------------------------------------------------

    async def guardrails(
        self,
        window: Window,
        filters: Filters,
        guardrail: str | None = None,
        action: str | None = None,
    ) -> Series:
        """Guardrail verdicts per bucket, guardrail, category and action (events, and the
        requests they were on); ``truncated`` when more than ``MAX_POINTS`` points."""
        table = request_records
        dialect = self._dialect
        verdicts = q.json_elements(dialect, table.c.guardrails)
        fields = [q.json_field(dialect, verdicts.c.value, name)
                  for name in ("guardrail", "category", "action")]  # fmt: skip
        keys = self._keys(table, window, None) + fields
        conditions = _conditions(table, window, filters)
        if guardrail is not None:
            conditions.append(fields[0] == guardrail)
        if action is not None:
            conditions.append(fields[2] == action)
        statement = (
            sa.select(*keys, sa.func.count(), sa.func.count(sa.distinct(table.c.id)))
            .select_from(table.join(verdicts, sa.true()))
            .where(*conditions)
            .group_by(*keys)
            .limit(MAX_POINTS + 1)
        )
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        points = []
        offset = 1 if window.size is not None else 0
        for row in rows[:MAX_POINTS]:
            at = window.start_of(row[0] if offset else None)
            name, category, action_ = (_text(value) for value in row[offset : offset + 3])
            events, requests = q.as_int(row[offset + 3]), q.as_int(row[offset + 4])
            points.append(GuardrailPoint(at, name, category, action_, events, requests))
        points.sort(key=lambda p: (p.at, p.guardrail or "", p.category or "", p.action or ""))
        return Series(points, len(rows) > MAX_POINTS)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _ordered(points: list[Any]) -> list[Any]:
    """Time order, then group (no group last)."""
    return sorted(points, key=lambda p: (p.at, p.group is None, p.group or ""))

"""The SQL that differs between SQLite and PostgreSQL for analytics, in one place.

Time buckets are integer arithmetic on epoch ``at``: ``floor(at / size)`` (SQLite truncates a
``CAST`` toward zero, which is the floor for times after 1970; PostgreSQL rounds a cast, so
it needs ``floor``). Constants render inline (``literal_column``): a bound parameter in both
the select list and ``GROUP BY`` would be two different parameters to PostgreSQL, and then
the selected expression is "not grouped".

Percentiles follow ``percentile_cont`` (linear interpolation between the two closest ranks).
PostgreSQL computes them natively, one ordered-set aggregate per measure. SQLite has no such
aggregate: it ranks each group's values with window functions and returns only the two ranks
around each percentile, which ``interpolate`` turns into the same number. Either way at most a
few rows per bucket and group leave the database, however many requests there were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

#: The percentiles every latency measure reports.
PERCENTILES = (0.5, 0.9, 0.99)


def inline(value: int | float | str) -> sa.ColumnElement[Any]:
    """A constant written into the SQL text (never user input: ours only)."""
    if isinstance(value, str):
        return sa.literal_column("'" + value.replace("'", "''") + "'")
    return sa.literal_column(repr(value))


def bucket_index(dialect: str, at: sa.ColumnElement[float], size: int) -> sa.ColumnElement[int]:
    """The whole number of ``size``-second buckets since the epoch that ``at`` falls in."""
    quotient = at / inline(size)
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(quotient), sa.BigInteger)
    return sa.cast(quotient, sa.BigInteger)


def percentiles_pg(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``percentile_cont(ARRAY[...]) WITHIN GROUP (ORDER BY column)``: a list per group."""
    fractions = ", ".join(repr(p) for p in PERCENTILES)
    return sa.func.percentile_cont(
        sa.literal_column(f"ARRAY[{fractions}]"), type_=ARRAY(sa.Double)
    ).within_group(column)


def rank_positions(count: sa.ColumnElement[int]) -> list[sa.ColumnElement[int]]:
    """The 1-based ranks whose values ``interpolate`` needs, as SQL over a group's ``count``."""
    positions: list[sa.ColumnElement[int]] = []
    for fraction in PERCENTILES:
        low = sa.cast((count - inline(1)) * inline(fraction), sa.BigInteger) + inline(1)
        positions += [low, low + inline(1)]
    return positions


def interpolate(count: int, ranked: dict[int, float]) -> tuple[float, ...]:
    """``percentile_cont`` for each of ``PERCENTILES`` from the values at the ranks
    ``rank_positions`` chose (``ranked``: 1-based rank -> value)."""
    result = []
    for fraction in PERCENTILES:
        position = (count - 1) * fraction
        low = math.floor(position)
        value = ranked[low + 1]
        if position > low:
            value += (position - low) * (ranked[low + 2] - value)
        result.append(value)
    return tuple(result)


def json_field(dialect: str, value: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[Any]:
    """A text field of a JSON object (SQL NULL when absent)."""
    if dialect == "postgresql":
        return value.op("->>")(inline(name))
    return sa.func.json_extract(value, inline("$." + name))


def json_elements(dialect: str, column: sa.ColumnElement[Any]) -> sa.TableValuedAlias:
    """The elements of a JSON list column as a table (column ``value``); anything but a list
    (SQL NULL, JSON null) has none."""
    if dialect == "postgresql":
        listed = sa.case(
            (sa.func.jsonb_typeof(column) == inline("array"), column),
            else_=sa.literal_column("'[]'::jsonb"),
        )
        return sa.func.jsonb_array_elements(listed).table_valued("value")
    listed = sa.case((sa.func.json_type(column) == inline("array"), column), else_=inline("[]"))
    return sa.func.json_each(listed).table_valued("value")


def as_int(value: Any) -> int:
    """A sum as an int (PostgreSQL sums BIGINT as NUMERIC; an empty sum is NULL)."""
    return int(value or 0)


def as_list(value: Any) -> Sequence[float]:
    return [float(item) for item in value]

"""/admin/v1/analytics: time series and rankings for dashboards (and the web console).

``usage`` and ``top`` read the per-minute usage rollups (money, tokens, requests);
``errors``, ``latency`` and ``guardrails`` read the request records. Reading them takes
``analytics:read`` (platform admins, tenant admins, viewers: the roles that read usage). A
platform admin sees every tenant (or one, with ``tenant_id``); everyone else only its own
tenant's numbers, whatever it asks for (another tenant's id answers an empty series).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gatewise.admin.analytics_schemas import (
    ErrorPointOut,
    ErrorsOut,
    ErrorTypeOut,
    GuardrailPointOut,
    GuardrailsOut,
    LatencyOut,
    LatencyPointOut,
    TopOut,
    UsagePointOut,
    UsageSeriesOut,
)
from gatewise.admin.authz import Caller, list_tenant, requires
from gatewise.core.errors import InvalidRequestError
from gatewise.identity.roles import Permission as P
from gatewise.store.analytics import (
    MAX_BUCKETS,
    MAX_GROUPS,
    MAX_POINTS,
    Analytics,
    AnalyticsError,
    Bucket,
    Dimension,
    ErrorTypeCount,
    Filters,
    Ranking,
    Series,
    Window,
)
from gatewise.store.identity_base import MAX_EPOCH
from gatewise.store.usage import parse_moment, period

router = APIRouter(prefix="/admin/v1/analytics", tags=["analytics"])
Reader = Annotated[Caller, Depends(requires(P.ANALYTICS_READ))]
MOMENT = "ISO-8601 (`2026-11-01`, `2026-11-01T10:00:00Z`; UTC when no zone) or epoch seconds"
Id = Annotated[str | None, Query(max_length=256)]


@dataclass(frozen=True, slots=True)
class Selection:
    """The window and filters of one request, after scoping (``empty``: nothing to see)."""

    since: float
    until: float
    filters: Filters
    empty: bool

    def window(self, bucket: Bucket, groups: int = 1) -> Window:
        try:
            return Window.of(self.since, self.until, bucket, groups)
        except AnalyticsError as exc:
            raise InvalidRequestError(f"{exc.param}: {exc}.", param=exc.param) from None


async def selection(
    caller: Reader,
    since: Annotated[
        str | None,
        Query(alias="from", description=MOMENT + "; inclusive. Default: 30 days before `to`"),
    ] = None,
    until: Annotated[
        str | None, Query(alias="to", description=MOMENT + "; exclusive. Default: now")
    ] = None,
    tenant_id: Annotated[
        str | None,
        Query(
            max_length=256,
            description="Only this tenant (others than platform admins: always their own)",
        ),
    ] = None,
    team_id: Id = None,
    app_id: Id = None,
    user_id: Id = None,
    key_id: Id = None,
    model: Id = None,
    provider: Id = None,
) -> Selection:
    """The window and the filters every analytics route takes."""
    start, end = _window(since, until)
    tenant = list_tenant(caller, tenant_id)
    named: dict[Dimension, str | None] = {
        "tenant": tenant.value, "team": team_id, "app": app_id, "user": user_id,
        "key": key_id, "model": model, "provider": provider,
    }  # fmt: skip
    filters = {name: value for name, value in named.items() if value is not None}
    return Selection(start, end, filters, tenant.empty)


Selected = Annotated[Selection, Depends(selection)]
BucketQuery = Annotated[
    Bucket,
    Query(
        description=f"UTC minute, hour or day (at most {MAX_BUCKETS} per answer), or `all`: "
        "the window as one bucket"
    ),
]
GroupQuery = Annotated[Dimension | None, Query(description="What each series is per")]
GroupLimit = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_GROUPS,
        description=f"At most this many groups, the first ones of the "
        f"window (1-{MAX_GROUPS}; buckets x groups at most {MAX_POINTS:,})",
    ),
]


@router.get("/usage", summary="Requests, tokens and cost over time")
async def usage_series(
    caller: Reader,
    selected: Selected,
    group_by: GroupQuery = None,
    bucket: BucketQuery = "hour",
    limit: GroupLimit = 10,
) -> UsageSeriesOut:
    """From the per-minute usage rollups; grouped series keep the `limit` groups that cost
    most (then made the most calls) in the window."""
    window = selected.window(bucket, limit if group_by else 1)
    series = Series([])
    if not selected.empty:
        series = await Analytics(caller.store.database).usage_series(
            window, selected.filters, group_by, limit
        )
    return UsageSeriesOut.model_validate(
        {
            **UsageSeriesOut.fields(window),
            "data": [UsagePointOut.of(point) for point in series.points],
            "group_by": group_by,
            "truncated": series.truncated,
        }
    )


@router.get("/top", summary="Top consumers by cost, tokens or requests")
async def top(
    caller: Reader,
    selected: Selected,
    group_by: Annotated[Dimension, Query(description="Who or what to rank")] = "key",
    by: Annotated[Ranking, Query(description="cost (USD), tokens or (admitted) requests")] = (
        "cost"
    ),
    limit: Annotated[int, Query(ge=1, le=MAX_GROUPS, description="1-100")] = 10,
) -> TopOut:
    window = selected.window("all")
    points = []
    if not selected.empty:
        points = await Analytics(caller.store.database).top(
            window, selected.filters, group_by, by, limit
        )
    return TopOut.model_validate(
        {
            "from": window.since,
            "to": window.until,
            "data": [UsagePointOut.of(point) for point in points],
            "group_by": group_by,
            "by": by,
        }
    )


@router.get("/errors", summary="Error rates over time, and errors per type")
async def errors(
    caller: Reader,
    selected: Selected,
    group_by: GroupQuery = None,
    bucket: BucketQuery = "hour",
    limit: GroupLimit = 10,
) -> ErrorsOut:
    """From the request records; grouped series keep the `limit` groups with the most
    errors in the window."""
    window = selected.window(bucket, limit if group_by else 1)
    series: Series = Series([])
    types: list[ErrorTypeCount] = []
    if not selected.empty:
        series, types = await Analytics(caller.store.database).errors(
            window, selected.filters, group_by, limit
        )
    return ErrorsOut.model_validate(
        {
            **ErrorsOut.fields(window),
            "data": [ErrorPointOut.of(point) for point in series.points],
            "types": [ErrorTypeOut.of(count) for count in types],
            "group_by": group_by,
            "truncated": series.truncated,
        }
    )


@router.get("/latency", summary="Latency percentiles over time")
async def latency(
    caller: Reader,
    selected: Selected,
    group_by: GroupQuery = None,
    bucket: BucketQuery = "hour",
    limit: GroupLimit = 10,
) -> LatencyOut:
    """p50, p90 and p99 (`percentile_cont`: interpolated between the closest ranks) of the
    duration, the time to first byte and the gateway's overhead, over the requests answered
    without an error, from the request records; grouped series keep the `limit` busiest
    groups."""
    window = selected.window(bucket, limit if group_by else 1)
    series = Series([])
    if not selected.empty:
        series = await Analytics(caller.store.database).latency(
            window, selected.filters, group_by, limit
        )
    return LatencyOut.model_validate(
        {
            **LatencyOut.fields(window),
            "data": [LatencyPointOut.of(point) for point in series.points],
            "group_by": group_by,
            "truncated": series.truncated,
        }
    )


@router.get("/guardrails", summary="Guardrail events over time")
async def guardrails(
    caller: Reader,
    selected: Selected,
    bucket: BucketQuery = "hour",
    guardrail: Annotated[str | None, Query(max_length=256, description="Only this one")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="Only verdicts with this action")
    ] = None,
) -> GuardrailsOut:
    """Verdicts per bucket, guardrail, category and action, from the request records."""
    window = selected.window(bucket)
    series = Series([])
    if not selected.empty:
        series = await Analytics(caller.store.database).guardrails(
            window, selected.filters, guardrail, action
        )
    return GuardrailsOut.model_validate(
        {
            **GuardrailsOut.fields(window),
            "data": [GuardrailPointOut.of(point) for point in series.points],
            "truncated": series.truncated,
        }
    )


def _window(since: str | None, until: str | None) -> tuple[float, float]:
    """The ``[from, to)`` window; a 400 naming the parameter at fault."""
    bounds: dict[str, float | None] = {}
    for name, text in (("from", since), ("to", until)):
        try:
            value = None if text is None else parse_moment(text)
        except ValueError as exc:
            raise InvalidRequestError(f"{name}: {exc}.", param=name) from None
        if value is not None and not 0 <= value <= MAX_EPOCH:
            raise InvalidRequestError(
                f"{name}: {text!r} is not between 1970 and the end of year 9999.", param=name
            )
        bounds[name] = value
    try:
        return period(bounds["from"], bounds["to"], now=time.time())
    except ValueError as exc:
        raise InvalidRequestError(f"from: {exc}.", param="from") from None

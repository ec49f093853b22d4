"""Response bodies of /admin/v1/analytics (pydantic: the OpenAPI docs and the serialisation).

Money leaves as an exact decimal string of dollars (``"12.345678"``), never a float; times
are UTC epoch seconds; latencies are milliseconds rounded to the microsecond (so both
engines answer the same digits).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gatewise.admin.schemas import EPOCH
from gatewise.store.analytics import (
    Bucket,
    Dimension,
    ErrorPoint,
    ErrorTypeCount,
    GuardrailPoint,
    LatencyPoint,
    Percentiles,
    Ranking,
    UsagePoint,
    Window,
)
from gatewise.store.usage import usd

AT = EPOCH + ": the start of the bucket"
GROUP = (
    "The tenant, team, app, user or key id, the model or the provider; null for requests "
    "without it, and when the series is not grouped"
)


class _Window(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    since: float = Field(alias="from", description=EPOCH + ", inclusive, widened to a bucket")
    until: float = Field(alias="to", description=EPOCH + ", exclusive, widened to a bucket")
    bucket: Bucket
    bucket_seconds: int | None = Field(description="null for `all`: the window is one bucket")

    @staticmethod
    def fields(window: Window) -> dict[str, object]:
        return {
            "from": window.since,
            "to": window.until,
            "bucket": window.bucket,
            "bucket_seconds": window.size,
        }


class UsagePointOut(BaseModel):
    at: float = Field(description=AT)
    group: str | None = Field(description=GROUP)
    requests: int = Field(description="Calls admitted: they reached an upstream, or the "
                          "gateway answered them")  # fmt: skip
    refused: int = Field(description="Calls limits, budgets (429) or access (403) turned away")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: str = Field(description="Known cost in USD, exact, 6 decimals", examples=["1.5"])
    cost_unknown_requests: int = Field(description="Calls of a model without a price")

    @classmethod
    def of(cls, point: UsagePoint) -> UsagePointOut:
        return cls(
            at=point.at,
            group=point.group,
            requests=point.requests,
            refused=point.refused,
            prompt_tokens=point.prompt_tokens,
            completion_tokens=point.completion_tokens,
            total_tokens=point.prompt_tokens + point.completion_tokens,
            cost_usd=usd(point.cost_micros),
            cost_unknown_requests=point.cost_unknown_requests,
        )


class UsageSeriesOut(_Window):
    data: list[UsagePointOut] = Field(description="Time order; empty buckets are left out")
    group_by: Dimension | None
    truncated: bool = Field(description="More groups than `limit` had calls in the window")


class TopOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    data: list[UsagePointOut] = Field(description="First by `by`, at most `limit`")
    since: float = Field(alias="from", description=EPOCH + ", inclusive (a whole minute)")
    until: float = Field(alias="to", description=EPOCH + ", exclusive (a whole minute)")
    group_by: Dimension
    by: Ranking


class ErrorPointOut(BaseModel):
    at: float = Field(description=AT)
    group: str | None = Field(description=GROUP)
    requests: int
    errors: int = Field(description="Answered with a status of 400 or more")
    client_errors: int = Field(description="4xx (refusals by limits and access included)")
    server_errors: int = Field(description="5xx")
    error_rate: float = Field(description="errors / requests, 6 decimals")

    @classmethod
    def of(cls, point: ErrorPoint) -> ErrorPointOut:
        return cls(
            at=point.at,
            group=point.group,
            requests=point.requests,
            errors=point.errors,
            client_errors=point.errors - point.server_errors,
            server_errors=point.server_errors,
            error_rate=round(point.errors / point.requests, 6),
        )


class ErrorTypeOut(BaseModel):
    error_type: str | None = Field(description="e.g. rate_limit_error; null when unrecorded")
    errors: int

    @classmethod
    def of(cls, count: ErrorTypeCount) -> ErrorTypeOut:
        return cls(error_type=count.error_type, errors=count.errors)


class ErrorsOut(_Window):
    data: list[ErrorPointOut] = Field(description="Time order; empty buckets are left out")
    types: list[ErrorTypeOut] = Field(description="The window's errors per type, most first")
    group_by: Dimension | None
    truncated: bool = Field(description="More groups than `limit` had requests in the window")


class PercentilesOut(BaseModel):
    count: int = Field(description="Requests with this measure")
    p50: float
    p90: float
    p99: float

    @classmethod
    def of(cls, found: Percentiles | None) -> PercentilesOut | None:
        if found is None:
            return None
        p50, p90, p99 = (round(value, 3) for value in found.values)
        return cls(count=found.count, p50=p50, p90=p90, p99=p99)


class LatencyPointOut(BaseModel):
    at: float = Field(description=AT)
    group: str | None = Field(description=GROUP)
    requests: int = Field(description="Requests answered without an error (status < 400)")
    duration_ms: PercentilesOut | None = Field(description="Arrival to the last byte")
    first_byte_ms: PercentilesOut | None = Field(
        description="Arrival to the first byte of the answer; null when none was recorded"
    )
    overhead_ms: PercentilesOut | None = Field(
        description="The gateway's own time (duration less the upstream's)"
    )

    @classmethod
    def of(cls, point: LatencyPoint) -> LatencyPointOut:
        get = point.measures.get
        return cls(
            at=point.at,
            group=point.group,
            requests=point.requests,
            duration_ms=PercentilesOut.of(get("duration_ms")),
            first_byte_ms=PercentilesOut.of(get("first_byte_ms")),
            overhead_ms=PercentilesOut.of(get("overhead_ms")),
        )


class LatencyOut(_Window):
    data: list[LatencyPointOut] = Field(description="Time order; empty buckets are left out")
    group_by: Dimension | None
    truncated: bool = Field(description="More groups than `limit` had requests in the window")


class GuardrailPointOut(BaseModel):
    at: float = Field(description=AT)
    guardrail: str | None
    category: str | None
    action: str | None = Field(description="What the guardrail did, e.g. block, redact, flag")
    events: int = Field(description="Verdicts")
    requests: int = Field(description="Requests with at least one such verdict")

    @classmethod
    def of(cls, point: GuardrailPoint) -> GuardrailPointOut:
        return cls(
            at=point.at,
            guardrail=point.guardrail,
            category=point.category,
            action=point.action,
            events=point.events,
            requests=point.requests,
        )


class GuardrailsOut(_Window):
    data: list[GuardrailPointOut] = Field(description="Time order, then guardrail")
    truncated: bool = Field(description="More points than the answer holds")

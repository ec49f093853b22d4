"""The ``state``, ``limits`` and ``budgets`` sections: how much each caller may use.

``limits`` are rates (requests and tokens per second/minute/hour/day) and
concurrency caps, each counted ``per`` key, app, team, tenant, user, model,
client IP or globally, optionally only for some models or tenants. ``budgets``
cap spend (USD) or tokens per calendar day/month in a time zone, or over a
rolling window; ``hard`` ones refuse, ``soft`` ones only alert. ``state`` says
where the counters live: in each process (``memory``, the embedded default)
or in Redis, shared by every replica.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from gatewise.config.base import Name, Strict
from gatewise.config.pricing import exact_money
from gatewise.config.secrets import REFERENCE

Scope = Literal["key", "app", "team", "tenant", "user", "model", "ip", "global"]

#: Rate fields and their periods in seconds.
REQUEST_RATES = {
    "requests_per_second": 1.0,
    "requests_per_minute": 60.0,
    "requests_per_hour": 3600.0,
    "requests_per_day": 86400.0,
}
TOKEN_RATES = {
    "tokens_per_minute": 60.0,
    "tokens_per_hour": 3600.0,
    "tokens_per_day": 86400.0,
}
#: A count in a limit or budget: a whole number (strict: ``true`` is not 1).
Count = Annotated[int, Field(ge=1, strict=True)]


def _check_redis_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("the Redis URL must start with redis://, rediss:// or unix://")
    if parts.password and not REFERENCE.fullmatch(parts.password):
        raise ValueError(
            "the Redis password must be a reference such as ${env:REDIS_PASSWORD}, "
            "never a literal value"
        )
    return value


class StateConfig(Strict):
    """Where limit and budget counters live."""

    backend: Literal["memory", "redis"] = Field(
        "memory",
        description=(
            "memory: counters in each worker process (exact with one worker; with N workers "
            "each enforces 1/N of every limit); redis: shared by every worker and replica."
        ),
    )
    redis_url: Annotated[str, AfterValidator(_check_redis_url)] | None = Field(
        None, description="redis://host:6379/0; a password must be a ${env:...} reference."
    )
    on_error: Literal["open", "closed"] = Field(
        "closed",
        description=(
            "When Redis cannot be reached: closed refuses calls (503) while limits cannot be "
            "checked; open keeps serving with per-process limits (each worker: 1/N of a limit)."
        ),
    )
    timeout_ms: int = Field(100, ge=5, le=5000, description="Per Redis call.")
    key_prefix: str = Field("gw:", max_length=64)

    @model_validator(mode="after")
    def _redis_needs_url(self) -> StateConfig:
        if self.backend == "redis" and not self.redis_url:
            raise ValueError("redis_url: required when backend is redis")
        return self


class LimitConfig(Strict):
    """Rates and a concurrency cap, counted separately for each value of ``per``."""

    name: Name | None = Field(
        None,
        description=(
            "Names the limit's counters and shows in 429 messages; unique among limits. "
            "Default <per>-<index>."
        ),
    )
    per: Scope
    models: Annotated[list[str], Field(min_length=1)] | None = Field(
        None,
        description=(
            "Only calls to these models (names or globs, each matching a configured model) "
            "count; default all."
        ),
    )
    tenants: Annotated[list[Name], Field(min_length=1)] | None = Field(
        None, description="Only callers of these tenants (by name); default all."
    )
    prompts: Annotated[list[Name], Field(min_length=1)] | None = Field(
        None,
        description=(
            "Only calls made through these prompt endpoints (prompt names, e.g. sentiment); "
            "default all calls, prompt calls included."
        ),
    )
    requests_per_second: Count | None = None
    requests_per_minute: Count | None = None
    requests_per_hour: Count | None = None
    requests_per_day: Count | None = None
    tokens_per_minute: Count | None = Field(None, description="Input + output tokens.")
    tokens_per_hour: Count | None = None
    tokens_per_day: Count | None = None
    concurrent: Count | None = Field(None, description="Requests in flight at once.")

    @model_validator(mode="after")
    def _something_to_limit(self) -> LimitConfig:
        fields = (*REQUEST_RATES, *TOKEN_RATES, "concurrent")
        if all(getattr(self, f) is None for f in fields):
            raise ValueError(f"a limit needs at least one of: {', '.join(fields)}")
        return self


Money = Annotated[
    Decimal,
    BeforeValidator(exact_money("amounts of money")),
    Field(gt=0, allow_inf_nan=False, max_digits=18, decimal_places=6),
]


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    return value


class BudgetConfig(Strict):
    """A cap on spend or tokens per period, separately for each value of ``per``."""

    name: Name = Field(description="Names the budget in 429 messages and alerts.")
    per: Literal["tenant", "team", "app", "key", "user", "model", "global"]
    models: Annotated[list[str], Field(min_length=1)] | None = None
    tenants: Annotated[list[Name], Field(min_length=1)] | None = None
    #: Only calls made through these prompt endpoints (see ``LimitConfig.prompts``).
    prompts: Annotated[list[Name], Field(min_length=1)] | None = None
    usd: Money | None = Field(None, description="Spend cap in USD, e.g. '500.00'.")
    tokens: Count | None = Field(None, description="Token cap (input + output).")
    period: Literal["day", "month"]
    reset: Literal["calendar", "rolling"] = Field(
        "calendar",
        description=(
            "calendar: resets at the start of each day/month in `timezone`; rolling: the last "
            "24 hours / 30 days at any moment."
        ),
    )
    timezone: Annotated[str, AfterValidator(_check_timezone)] = "UTC"
    mode: Literal["hard", "soft"] = Field(
        "hard", description="hard: refuse calls once spent (429 insufficient_quota); soft: alert."
    )
    alerts: list[Annotated[int, Field(ge=1, le=1000, strict=True)]] = Field(
        default_factory=lambda: [50, 80, 100],
        description="Percentages of the budget at which the webhook is called (once per period).",
    )
    webhook: Name | None = Field(None, description="The `webhooks` entry to notify.")

    @model_validator(mode="after")
    def _one_measure(self) -> BudgetConfig:
        if (self.usd is None) == (self.tokens is None):
            raise ValueError("a budget needs exactly one of usd or tokens")
        if self.reset == "rolling" and self.mode == "soft":
            raise ValueError("mode: soft budgets need reset: calendar (alerts are per period)")
        return self

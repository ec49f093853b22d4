"""Routing settings: per model (``models[].routing``, timeouts, fallbacks, hedging,
regions), per deployment (weight, tags, region, timeout) and for the whole gateway
(the ``routing:`` section: retries and their budget, circuit breakers, response
headers, and which callers are held to which regions).

Residency is a restriction: a call goes only to deployments whose ``region`` is in
every restriction that applies to it (its model's ``regions`` and those of its
tenant, team, app and key under ``routing.residency``). A deployment without a
region never serves a restricted call.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, model_validator

from gatewise.config.base import Name, Strict

StrategyName = Literal[
    "failover",
    "weighted",
    "least_latency",
    "lowest_cost",
    "least_busy",
    "tags",
    "prefix_affinity",
]
#: The names ``models[].routing.strategy`` takes (``routing.strategies`` builds each).
STRATEGIES: tuple[str, ...] = get_args(StrategyName)

Region = Name


class HedgeConfig(Strict):
    """A second attempt on the next deployment when the first is slow; the first
    answer wins and the other is cancelled (billed once, counted once)."""

    after_ms: float | None = Field(
        None, gt=0, description="Start the second attempt after this long without an answer."
    )
    after: Literal["fixed", "p95"] = Field(
        "fixed",
        description=(
            "p95: after the first deployment's observed 95th percentile time to first byte "
            "(after_ms until enough calls were seen)."
        ),
    )

    @model_validator(mode="after")
    def _some_delay(self) -> HedgeConfig:
        if self.after_ms is None:
            raise ValueError("after_ms: a hedge needs a delay (also the start value for p95)")
        return self


class ModelRoutingConfig(Strict):
    """A model's routing: strategy, time limits, fallbacks, hedging and regions."""

    strategy: StrategyName = Field(
        "failover",
        description=(
            "failover: configured order; weighted: by deployment weight (canary, A/B); "
            "least_latency: lowest smoothed time to first byte; lowest_cost: cheapest for the "
            "request's tokens; least_busy: fewest calls in flight; tags: deployments carrying "
            "every tag of the x-gatewise-tags header; prefix_affinity: calls sharing a long "
            "prompt opening stick to one deployment (provider prompt caches keep hitting)."
        ),
    )
    sticky: Literal["none", "key", "user", "header"] = Field(
        "none",
        description=(
            "weighted: the same key, user (the request's `user` field, else the key) or "
            "session header value always prefers the same deployment."
        ),
    )
    sticky_header: str = Field(
        "x-session-id", min_length=1, description="The header `sticky: header` reads."
    )
    measure: Literal["ttfb", "total"] = Field(
        "ttfb", description="least_latency: time to first byte, or whole duration."
    )
    prefix_chars: int = Field(
        2048, ge=256, le=65536, description="prefix_affinity: how much of the prompt counts."
    )
    timeout: float | None = Field(
        None,
        gt=0,
        description=(
            "Seconds an attempt may take up to the reply (a stream: to its opening); a "
            "deployment's own timeout wins."
        ),
    )
    fallbacks: list[Name] = Field(
        default_factory=list,
        description="Models tried in order once every deployment of this one failed.",
    )
    context_window_fallbacks: list[Name] = Field(
        default_factory=list,
        description="Models tried when a deployment says the prompt is too long for it.",
    )
    content_policy_fallbacks: list[Name] = Field(
        default_factory=list,
        description="Models tried when a deployment refuses the prompt on content policy.",
    )
    hedge: HedgeConfig | None = None
    regions: list[Region] | None = Field(
        None, description="Only deployments in these regions may serve this model."
    )


class RetryBudgetConfig(Strict):
    """Retries may add at most ``ratio`` extra attempts over first attempts, per worker,
    over a sliding ``window_s`` (so retries cannot multiply an outage), and always
    ``min_per_s`` a second (so a quiet gateway can still retry)."""

    ratio: float = Field(0.2, ge=0, le=10)
    window_s: float = Field(10.0, gt=0, le=3600)
    min_per_s: float = Field(1.0, ge=0, le=1000)


class RetryConfig(Strict):
    """Retries of retryable failures (connection errors, 408, 429, 5xx, timeouts),
    never once a stream's first byte reached the client."""

    attempts: int | None = Field(
        None,
        ge=1,
        le=20,
        description=(
            "Attempts per model, at most; default: one per deployment (each tried once, in "
            "plan order). More than the deployments: the plan is walked again, with backoff."
        ),
    )
    backoff_ms: float = Field(
        100.0, ge=0, le=60_000, description="First backoff before retrying a deployment."
    )
    max_backoff_ms: float = Field(
        2000.0, ge=0, le=600_000, description="Backoff doubles per retry up to this (jittered)."
    )
    max_retry_after_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description=(
            "A 429's retry-after cools its deployment down this long at most; a retry waits "
            "for it only when it is shorter than max_backoff_ms."
        ),
    )
    budget: RetryBudgetConfig = RetryBudgetConfig()


class BreakerConfig(Strict):
    """A deployment's circuit breaker: open after consecutive failures or a high error
    rate over a window, closed again by one successful probe after the cool-down."""

    failures: int = Field(5, ge=1, le=1000)
    error_rate: float = Field(0.5, gt=0, le=1)
    min_requests: int = Field(20, ge=1)
    window_s: float = Field(30.0, gt=0, le=3600)
    cooldown_s: float = Field(30.0, gt=0, le=3600)
    fail_fast: bool = Field(
        False,
        description=(
            "When every deployment of a model without fallbacks is open or cooling down: "
            "true answers 503 at once; false (default) tries them anyway, so callers get the "
            "upstream's own answer rather than the gateway's guess. (A model with fallbacks "
            "goes to them.)"
        ),
    )


class HealthCheckConfig(Strict):
    """Active health checks: a one-token chat call to each deployment of ``models`` every
    ``interval_s`` (a check costs a token: off by default)."""

    interval_s: float = Field(0.0, ge=0, description="0: off.")
    timeout_s: float = Field(10.0, gt=0)
    models: list[Name] = Field(
        default_factory=list, description="The chat models whose deployments are checked."
    )


class ResidencyConfig(Strict):
    """Regions callers are held to; each entry narrows what the ones above allow."""

    tenants: dict[Name, list[Region]] = Field(default_factory=dict)
    teams: dict[Name, list[Region]] = Field(
        default_factory=dict, description="`tenant/team` names."
    )
    apps: dict[Name, list[Region]] = Field(default_factory=dict, description="`tenant/app`.")
    keys: dict[Name, list[Region]] = Field(default_factory=dict, description="Key ids.")


class RoutingConfig(Strict):
    """The ``routing:`` section."""

    headers: bool = Field(
        True,
        description=(
            "Answer with x-gatewise-deployment, x-gatewise-provider and x-gatewise-attempts."
        ),
    )
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    health_checks: HealthCheckConfig = HealthCheckConfig()
    residency: ResidencyConfig = ResidencyConfig()
    cooldown_on_429_s: float = Field(
        1.0, ge=0, le=3600, description="A 429 without retry-after cools its deployment this long."
    )

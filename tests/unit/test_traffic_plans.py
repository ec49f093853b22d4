"""TrafficControl's plans: compiled once per caller and model, rebuilt when a calendar period
ends, never shared between callers; and what admission and settlement charge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from gatewise.config.limits import BudgetConfig, LimitConfig
from gatewise.core.context import Attempt, RequestContext
from gatewise.core.errors import PermissionDeniedError, RateLimitError
from gatewise.core.types import Usage
from gatewise.identity.principal import Principal
from gatewise.identity.roles import Role
from gatewise.policies.limits import Planner
from gatewise.policies.traffic import DEFAULT_OUTPUT_TOKENS, Admission, TrafficControl
from gatewise.pricing.catalog import Price
from gatewise.state.memory import MemoryCounterStore

UTC = ZoneInfo("UTC")
PRICE = Price(input=Decimal(1_000_000), output=Decimal(2_000_000))  # $1 / $2 per million tokens


def caller(key: str, app: str = "app_1") -> Principal:
    return Principal(
        "key", f"key:{key}", Role.CONSUMER, app, tenant_id="ten_1", app_id=app, key_id=key
    )


class Clock:
    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


def control(
    clock: Clock, *, limits: list[LimitConfig], budgets: list[BudgetConfig]
) -> TrafficControl:
    store = MemoryCounterStore(clock)
    return TrafficControl(
        store, Planner(limits, budgets), tenant_name=lambda _: "acme", clock=clock
    )


async def admit(
    traffic: TrafficControl,
    ctx: RequestContext,
    model: str,
    count_prompt: Callable[[], int],
    output_tokens: int | None,
    price: Price | None,
) -> Admission | None:
    """Charge, then decide: the two steps the admission step takes."""
    assert isinstance(ctx.principal, Principal)
    charge = traffic.charge(ctx, ctx.principal, model, count_prompt, output_tokens, price)
    return None if charge is None else await traffic.decide(ctx, charge)


def context(principal: Principal) -> RequestContext:
    ctx = RequestContext(request_id="req_1", operation="chat", model="m")
    ctx.principal = principal
    ctx.attempts.append(Attempt("p", "m", 200))
    return ctx


async def test_a_calendar_budget_starts_afresh_when_its_day_ends() -> None:
    clock = Clock(datetime(2026, 11, 27, 23, 59, 58, tzinfo=UTC))
    budget = BudgetConfig(name="daily", per="app", tokens=3000, period="day", timezone="UTC")
    traffic = control(clock, limits=[], budgets=[budget])
    one = caller("k1")
    admitted = await admit(traffic, context(one), "m", lambda: 976, None, PRICE)
    assert admitted is not None and admitted.tokens == 976 + DEFAULT_OUTPUT_TOKENS
    assert admitted.checks[0].key.endswith(":2026-11-27")
    with pytest.raises(RateLimitError) as refused:  # 2,000 + 2,000 > 3,000
        await admit(traffic, context(one), "m", lambda: 976, None, PRICE)
    assert refused.value.code == "insufficient_quota"
    clock.now += 3  # 00:00:01 the next day: a new period, a new key, a new plan
    again = await admit(traffic, context(one), "m", lambda: 976, None, PRICE)
    assert again is not None and again.checks[0].key.endswith(":2026-11-28")


async def test_plans_belong_to_their_caller_and_model() -> None:
    clock = Clock(datetime(2026, 11, 27, 12, tzinfo=UTC))
    limit = LimitConfig(per="key", requests_per_minute=1)
    traffic = control(clock, limits=[limit], budgets=[])
    assert await admit(traffic, context(caller("k1")), "m", lambda: 1, 1, PRICE) is not None
    # Another key has its own counter; the same key on another model shares its own.
    assert await admit(traffic, context(caller("k2")), "m", lambda: 1, 1, PRICE) is not None
    with pytest.raises(RateLimitError):
        await admit(traffic, context(caller("k1")), "other", lambda: 1, 1, PRICE)


async def test_a_prompt_limit_counts_only_calls_through_that_prompt() -> None:
    clock = Clock(datetime(2026, 11, 27, 12, tzinfo=UTC))
    per_prompt = LimitConfig(per="key", requests_per_minute=1, prompts=["sentiment"])
    traffic = control(clock, limits=[per_prompt], budgets=[])
    one = caller("k1")

    def through(prompt: str | None) -> RequestContext:
        ctx = context(one)
        ctx.prompt = prompt
        return ctx

    assert await admit(traffic, through("sentiment"), "m", lambda: 1, 1, PRICE) is not None
    with pytest.raises(RateLimitError):  # the prompt's one call a minute is spent
        await admit(traffic, through("sentiment"), "m", lambda: 1, 1, PRICE)
    # The same model called directly, or through another prompt, is not counted at all.
    assert await admit(traffic, through(None), "m", lambda: 1, 1, PRICE) is None
    assert await admit(traffic, through("summary"), "m", lambda: 1, 1, PRICE) is None


async def test_settlement_corrects_tokens_and_cost_and_frees_the_slot() -> None:
    clock = Clock(datetime(2026, 11, 27, 12, tzinfo=UTC))
    limits = [LimitConfig(per="key", tokens_per_minute=10_000, concurrent=1)]
    budgets = [BudgetConfig(name="spend", per="app", usd="1", period="month", timezone="UTC")]
    traffic = control(clock, limits=limits, budgets=budgets)
    ctx = context(caller("k1"))
    admission = await admit(traffic, ctx, "m", lambda: 1000, 500, PRICE)
    assert admission is not None and (admission.tokens, admission.cost) == (1500, 2000)
    with pytest.raises(RateLimitError):  # the only slot is taken
        await admit(traffic, context(caller("k1")), "m", lambda: 1, 1, PRICE)
    ctx.cost_micros = 1200  # 1000 x $1 + 100 x $2 per million, as accounting prices it
    traffic.settle(ctx, admission, Usage(prompt_tokens=1000, completion_tokens=100))
    states = traffic.store.admit_now(admission.checks, admission.costs)  # type: ignore[attr-defined]
    # 1,100 tokens used, then the same 1,500 again; 1,200 micro-USD, then 2,000 again.
    assert [s.remaining for s in states.states] == [10_000 - 1100 - 1500, 0, 1_000_000 - 3200]


async def test_a_usd_budget_refuses_a_model_without_a_price() -> None:
    clock = Clock(datetime(2026, 11, 27, 12, tzinfo=UTC))
    budget = BudgetConfig(name="spend", per="app", usd="1", period="month")
    traffic = control(clock, limits=[], budgets=[budget])
    with pytest.raises(PermissionDeniedError) as refused:
        await admit(traffic, context(caller("k1")), "m", lambda: 1, 1, None)
    assert refused.value.code == "price_unknown"


async def test_a_dearer_deployment_is_charged_the_difference_before_it_is_called() -> None:
    clock = Clock(datetime(2026, 11, 27, 12, tzinfo=UTC))
    budgets = [BudgetConfig(name="spend", per="app", usd="0.005", period="month", timezone="UTC")]
    traffic = control(clock, limits=[], budgets=budgets)
    cheap = Price(input=Decimal(0), output=Decimal(0))
    ctx = context(caller("k1"))
    admission = await admit(traffic, ctx, "m", lambda: 1000, 500, cheap)
    assert admission is not None and admission.cost == 0
    # 1,000 x $1 + 500 x $2 per million = 2,000 micro-USD more at PRICE: the budget takes it.
    extra = traffic.extra_cost(admission, PRICE, "m")
    assert extra == 2000
    await traffic.recharge(ctx, admission, extra)
    assert admission.cost == 2000
    assert traffic.extra_cost(admission, PRICE, "m") == 0  # already charged at that price
    assert traffic.extra_cost(admission, cheap, "m") == 0  # a cheaper one costs nothing more
    dear = Price(input=Decimal(4_000_000), output=Decimal(0))  # 4,000 micro-USD for the prompt
    assert traffic.extra_cost(admission, dear, "m") == 2000
    await traffic.recharge(ctx, admission, 2000)  # 4,000 of 5,000 charged
    dearest = Price(input=Decimal(6_000_000), output=Decimal(0))  # 6,000: over the budget
    with pytest.raises(RateLimitError) as refused:
        await traffic.recharge(ctx, admission, traffic.extra_cost(admission, dearest, "m"))
    assert refused.value.code == "insufficient_quota"
    assert admission.cost == 4000  # a refused re-charge charges nothing
    with pytest.raises(PermissionDeniedError):  # a deployment without a price cannot be enforced
        traffic.extra_cost(admission, None, "m")


def test_a_slot_lives_a_little_longer_than_its_call_may_run() -> None:
    """Not a fixed 600 s: a slot whose release is lost (a crashed worker) must not lock
    its caller out for much longer than the call could have run."""
    from gatewise.config.models import Config
    from gatewise.policies.traffic_setup import build_traffic

    config = Config.model_validate(
        {
            "providers": {
                "quick": {"type": "mock", "timeouts": {"total": 30}},
                "usual": {"type": "mock"},  # timeouts.total: 600 s by default
            },
            "models": [
                {"name": "fast", "deployments": [{"provider": "quick", "model": "m"}]},
                {  # a call may try both in turn: 30 s, then up to 600 s
                    "name": "chain",
                    "deployments": [
                        {"provider": "quick", "model": "m"},
                        {"provider": "usual", "model": "m"},
                    ],
                },
            ],
            "limits": [{"per": "key", "concurrent": 2}],
        }
    )
    traffic = build_traffic(config, None, identity=None).traffic  # type: ignore[arg-type]
    assert traffic is not None
    ttls = {}
    for model in ("fast", "chain"):
        ctx = context(caller("k1"))
        charge = traffic.charge(ctx, caller("k1"), model, lambda: 1, 1, PRICE)
        assert charge is not None
        ttls[model] = charge.checks[0].ttl  # type: ignore[union-attr]
    assert ttls == {"fast": 35.0, "chain": 635.0}

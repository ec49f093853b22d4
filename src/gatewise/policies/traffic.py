"""Traffic control: admit a call against every limit and budget, settle it afterwards.

``admit`` runs before the upstream call, with estimates: tokens are the
prompt (counted locally) plus the output the request allows (``max_tokens``,
else ``DEFAULT_OUTPUT_TOKENS``), cost is those tokens at the deployment's
price. One ``CounterStore.admit`` checks and charges every counter at once,
so a refused call charges nothing and a hard budget is overshot by at most
the error of one call's estimate. ``settle`` runs when the call is over
(streams included), corrects the charges with the real usage and frees
concurrency slots, in the background: the response never waits for it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gatewise.core.context import RequestContext
from gatewise.core.errors import (
    GatewayError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
)
from gatewise.core.types import Usage
from gatewise.policies.budget_alerts import BudgetAlerts
from gatewise.policies.limits import BudgetRules, Call, LimitRules, Meter
from gatewise.policies.rate_headers import rate_headers
from gatewise.policies.settlements import SettlementBatcher
from gatewise.pricing.catalog import Price
from gatewise.pricing.cost import cost_micros, estimate_cost_micros
from gatewise.state.base import (
    Adjustment,
    Check,
    CounterStore,
    Outcome,
    Quota,
    Rate,
    Slots,
    StateUnavailableError,
)

log = logging.getLogger("gatewise.limits")

#: Output tokens assumed for admission when a request sets no max_tokens.
DEFAULT_OUTPUT_TOKENS = 1024


@dataclass(slots=True)
class Admission:
    """What ``admit`` charged, so ``settle`` can correct it."""

    meters: list[Meter]
    checks: list[Check]
    tokens: int | None  # the token estimate charged (None: no token counter)
    cost: int | None  # the micro-USD estimate charged (None: no USD counter)
    price: Price | None


class Estimate:
    """A call's token and cost estimates, computed only if some counter needs them."""

    __slots__ = ("_cost", "_count", "_output", "_price", "_prompt", "_tokens")

    def __init__(self, count: Callable[[], int], output: int | None, price: Price | None) -> None:
        self._count = count
        self._output = DEFAULT_OUTPUT_TOKENS if output is None else output
        self._price = price
        self._prompt: int | None = None
        self._tokens: int | None = None
        self._cost: int | None = None

    def prompt(self) -> int:
        if self._prompt is None:
            self._prompt = self._count()
        return self._prompt

    def tokens(self) -> int:
        if self._tokens is None:
            self._tokens = self.prompt() + self._output
        return self._tokens

    def cost(self) -> int | None:
        if self._cost is None and self._price is not None:
            self._cost = estimate_cost_micros(self._price, self.prompt(), self._output)
        return self._cost

    @property
    def used_tokens(self) -> int | None:
        return self._tokens

    @property
    def used_cost(self) -> int | None:
        return self._cost


class TrafficControl:
    def __init__(
        self,
        store: CounterStore,
        limits: LimitRules,
        budgets: BudgetRules,
        *,
        tenant_name: Callable[[str | None], str | None],
        alerts: BudgetAlerts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._limits = limits
        self._budgets = budgets
        self._tenant_name = tenant_name
        self._alerts = alerts
        self._clock = clock
        self._batcher = SettlementBatcher(store, self._settled)

    async def admit(
        self,
        ctx: RequestContext,
        model: str,
        count_prompt: Callable[[], int],
        output_tokens: int | None,
        price: Price | None,
    ) -> Admission | None:
        principal = ctx.principal
        if principal is None:
            return None
        call = Call(principal, model, ctx.client_ip, self._tenant_name(principal.tenant_id))
        estimate = Estimate(count_prompt, output_tokens, price)
        pairs = self._limits.checks(call, estimate.tokens)
        budget_pairs = self._budgets.checks(call, self._clock(), estimate.tokens, estimate.cost)
        if price is None and self._budgets.has_usd_for(call):
            raise PermissionDeniedError(
                f"The model `{model}` has no price, so the USD budget that applies to you "
                "cannot be enforced; an admin must set `price:` on its deployment.",
                code="price_unknown",
                param="model",
            )
        pairs += budget_pairs
        if not pairs:
            return None
        meters = [meter for meter, _ in pairs]
        checks = [check for _, check in pairs]
        try:
            outcome = await self.store.admit(checks)
        except StateUnavailableError as exc:
            log.warning("limits cannot be checked: %s", exc)
            raise ServiceUnavailableError(
                "Rate limits and budgets cannot be checked right now; try again shortly.",
                code="limits_unavailable",
                headers={"retry-after": "1"},
            ) from None
        ctx.rate_headers = rate_headers(ctx.wire, meters, outcome.states)
        if not outcome.allowed:
            ctx.decisions.append(f"limited:{_describe(meters[outcome.refused or 0])}")
            raise _refusal(meters, checks, outcome)
        admission = Admission(meters, checks, estimate.used_tokens, estimate.used_cost, price)
        if self._alerts is not None:
            self._alerts.after_admit(meters, checks, outcome.states)
        return admission

    def settle(
        self,
        ctx: RequestContext,
        admission: Admission | None,
        usage: Usage | None,
        price: Price | None,
    ) -> None:
        """Record the cost, correct the estimates with ``usage`` and free slots, without
        making anyone wait."""
        if price is not None:  # a call without usage (it failed) is not billed
            ctx.cost_micros = cost_micros(price, usage) if usage is not None else 0
        if admission is None:
            return
        tokens = (usage.prompt_tokens + usage.completion_tokens) if usage is not None else 0
        adjustments: list[Adjustment] = []
        release: list[Slots] = []
        for meter, check in zip(admission.meters, admission.checks, strict=True):
            if isinstance(check, Slots):
                release.append(check)
            elif meter.kind == "tokens" or (meter.kind == "budget" and not meter.usd):
                if admission.tokens is not None and tokens != admission.tokens:
                    adjustments.append(Adjustment(check, tokens - admission.tokens))
            elif meter.kind == "budget" and admission.cost is not None:
                actual = ctx.cost_micros if ctx.cost_micros is not None else 0
                if actual != admission.cost:
                    adjustments.append(Adjustment(check, actual - admission.cost))
        if not adjustments and not release:
            return
        self._batcher.add(admission, adjustments, release)

    def _settled(
        self, admission: Admission, adjustments: list[Adjustment], totals: list[int]
    ) -> None:
        if self._alerts is not None and adjustments:
            self._alerts.after_settle(admission.meters, admission.checks, adjustments, totals)

    async def close(self) -> None:
        """Send the settlements still waiting (a clean stop loses none)."""
        await self._batcher.close()


def _describe(meter: Meter) -> str:
    return (
        f"{meter.kind}:{meter.name}:{meter.period}"
        if meter.period
        else f"{meter.kind}:{meter.name}"
    )


def _refusal(meters: list[Meter], checks: list[Check], outcome: Outcome) -> GatewayError:
    index = outcome.refused or 0
    meter, check = meters[index], checks[index]
    wait = max(outcome.retry_after, 0.001)
    retry = {
        "retry-after": str(max(1, math.ceil(wait))),
        "retry-after-ms": str(math.ceil(wait * 1000)),
    }
    if meter.kind == "budget":
        what = "USD" if meter.usd else "tokens"
        headers = {"x-should-retry": "false"}
        if isinstance(check, Rate):
            headers.update(retry)
        return RateLimitError(
            f"You exceeded the budget '{meter.name}' ({what} per {meter.per}, period "
            f"{meter.period}). It resets with its period; ask an admin to raise it.",
            type="insufficient_quota",
            code="insufficient_quota",
            headers=headers,
        )
    if meter.kind == "concurrent":
        limit = check.limit
        return RateLimitError(
            f"Too many concurrent requests for limit '{meter.name}' (at most {limit} per "
            f"{meter.per}). Retry when one of your calls has finished.",
            type="requests",
            headers={"retry-after": "1", "retry-after-ms": "1000"},
        )
    assert isinstance(check, Rate | Quota)
    if check.cost > check.limit:  # waiting cannot help: the call alone is over the limit
        return RateLimitError(
            f"This request needs about {check.cost} {meter.kind}, more than the limit "
            f"'{meter.name}' allows at all ({check.limit} per {meter.period}); make it "
            "smaller (e.g. a lower max_tokens).",
            type=meter.kind,
            headers={"x-should-retry": "false"},
        )
    return RateLimitError(
        f"Rate limit reached for {meter.kind} per {meter.period} (limit '{meter.name}': "
        f"{check.limit} per {meter.per}). Retry after {wait:.3f} s.",
        type=meter.kind,
        headers=retry,
    )

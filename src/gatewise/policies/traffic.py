"""Traffic control: admit a call against every limit and budget, settle it afterwards.

Admission runs before the upstream call in two steps, ``charge`` then ``decide``
(``decide_now`` for a memory store), with estimates: tokens are the
prompt (counted locally) plus the output the request allows (``max_tokens``,
else ``DEFAULT_OUTPUT_TOKENS``), cost is those tokens at the deployment's
price. One ``CounterStore.admit`` checks and charges every counter at once,
so a refused call charges nothing and a hard budget is overshot by at most
the error of one call's estimate. ``settle`` runs when the call is over
(streams included), corrects the charges with the real usage and frees
concurrency slots, in the background, except that a freed slot must reach a
shared store before the reply is complete (the caller may call again at once,
through another replica): then ``settle`` returns what the reply waits for.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gatewise.core.context import RequestContext
from gatewise.core.errors import (
    GatewayError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
)
from gatewise.core.types import Usage
from gatewise.identity.principal import Principal
from gatewise.policies.budget_alerts import BudgetAlerts
from gatewise.policies.limits import Call, Meter, Plan, Planner, with_cost
from gatewise.policies.rate_headers import rate_headers
from gatewise.policies.settlements import SettlementBatcher
from gatewise.pricing.catalog import Price
from gatewise.pricing.cost import estimate_cost_micros
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
    """What a call was charged (``charge``), so ``settle`` can correct it."""

    plan: Plan
    checks: list[Check]
    tokens: int  # the token estimate charged (0 when no counter is charged in tokens)
    cost: int  # the micro-USD charged so far (0 when no counter is charged in USD)
    #: For a store that takes costs apart (memory): each check's cost, and ``checks`` are
    #: the plan's own. None: ``checks`` carry this call's costs.
    costs: list[int] | None = None
    #: The estimate's parts, to re-price it at another deployment (0 unless counted).
    prompt: int = 0
    output: int = 0
    #: The store's name for this admission (its slots' members; ``Outcome.token``).
    token: str = ""
    #: Admitted by the store's fallback (``Outcome.fallback``): settled there.
    fallback: bool = False

    def priced_checks(self) -> list[Check]:
        """The checks with this call's costs in them (for refusal messages)."""
        return self.checks if self.costs is None else self.plan.checks_for(self.tokens, self.cost)


#: Plans remembered at most (callers x models); beyond that the memo starts over.
_PLANS_LIMIT = 10_000


class TrafficControl:
    def __init__(
        self,
        store: CounterStore,
        planner: Planner,
        *,
        tenant_name: Callable[[str | None], str | None],
        alerts: BudgetAlerts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._planner = planner
        self._tenant_name = tenant_name
        self._alerts = alerts
        self._clock = clock
        self._batcher = SettlementBatcher(store, self._settled)
        self._settle_now: Callable[[list[Adjustment], list[Slots]], list[int]] | None = getattr(
            store, "settle_now", None
        )
        # A store standing in for a shared one settles what it admitted in line.
        self._settle_fallback: Callable[[list[Adjustment], list[Slots]], list[int]] | None = (
            getattr(store, "settle_fallback", None)
        )
        self._plans: dict[tuple[str | None, ...], Plan] = {}
        # The memory store decides without I/O: call it without a coroutine.
        self._admit_now: Callable[[list[Check], list[int] | None], Outcome] | None = getattr(
            store, "admit_now", None
        )

    @property
    def synchronous(self) -> bool:
        """Whether ``decide_now`` can be used: the store decides without I/O (memory)."""
        return self._admit_now is not None

    def charge(
        self,
        ctx: RequestContext,
        principal: Principal,
        model: str,
        count_prompt: Callable[[], int],
        output_tokens: int | None,
        price: Price | None,
    ) -> Admission | None:
        """What this call is charged, priced at the deployment it will call first: its
        plan's checks with the estimates filled in (None: no counter counts it)."""
        plan = self._plan(principal, model, ctx.client_ip, ctx.prompt)
        if not plan.checks:
            return None
        tokens = cost = prompt = output = 0
        if plan.in_tokens or plan.in_usd:
            prompt = count_prompt()
            output = DEFAULT_OUTPUT_TOKENS if output_tokens is None else output_tokens
            tokens = prompt + output
            if plan.in_usd:
                if price is None:
                    raise _unenforceable(model)
                cost = estimate_cost_micros(price, prompt, output)
        if self._admit_now is not None:
            costs = plan.costs_for(tokens, cost)
            return Admission(plan, plan.checks, tokens, cost, costs, prompt, output)
        return Admission(plan, plan.checks_for(tokens, cost), tokens, cost, None, prompt, output)

    def extra_cost(self, admission: Admission, price: Price | None, model: str) -> int:
        """What calling a deployment at ``price`` costs beyond what ``admission`` charged
        in USD (0: nothing more to charge, e.g. a cheaper deployment or no USD budget)."""
        if not admission.plan.in_usd:
            return 0
        if price is None:
            raise _unenforceable(model)
        cost = estimate_cost_micros(price, admission.prompt, admission.output)
        return max(0, cost - admission.cost)

    async def recharge(self, ctx: RequestContext, admission: Admission, extra: int) -> None:
        """Charge ``extra`` micro-USD more to the call's USD counters (a failover to a
        dearer deployment), or raise the budget's refusal: a hard budget is checked against
        the deployment really called, before it is called."""
        plan = admission.plan
        usd = plan.in_usd
        if self._admit_now is not None:
            checks = [plan.checks[index] for index in usd]
            outcome = self._admit_now(checks, [extra] * len(checks))
        else:
            checks = [with_cost(plan.checks[index], extra) for index in usd]
            try:
                outcome = await self.store.admit(checks)
            except StateUnavailableError as exc:
                log.warning("limits cannot be checked: %s", exc)
                raise _unavailable() from None
        meters = [plan.meters[index] for index in usd]
        if not outcome.allowed:
            ctx.decisions.append(f"limited:{_describe(meters[outcome.refused or 0])}")
            priced = [with_cost(check, extra) for check in checks]
            raise _refusal(meters, priced, outcome)
        admission.cost += extra

    async def decide(self, ctx: RequestContext, charge: Admission) -> Admission:
        """Check and charge ``charge`` in the store; raises the refusal."""
        if self._admit_now is not None:
            return self.decide_now(ctx, charge)
        taken = self._batcher.take()  # finished calls' settlements ride along
        if taken is None:
            try:
                outcome = await self.store.admit(charge.checks)
            except StateUnavailableError as exc:
                log.warning("limits cannot be checked: %s", exc)
                raise _unavailable() from None
        else:
            # The settlement is written to the store before this awaits anything; the
            # replies waiting for its slots go on however this ends.
            totals = None
            try:
                outcome = await self.store.admit(charge.checks, taken.settlement)
                totals = outcome.settled
            except StateUnavailableError as exc:
                log.warning("could not settle %d calls' limits: %s", len(taken.batch), exc)
                log.warning("limits cannot be checked: %s", exc)
                raise _unavailable() from None
            finally:
                self._batcher.settled(taken, totals)
        charge.token = outcome.token
        charge.fallback = outcome.fallback
        return self._decided(ctx, charge, outcome)

    def decide_now(self, ctx: RequestContext, charge: Admission) -> Admission:
        """``decide`` without a coroutine, for a store that decides without I/O."""
        assert self._admit_now is not None
        return self._decided(ctx, charge, self._admit_now(charge.checks, charge.costs))

    def _decided(self, ctx: RequestContext, charge: Admission, outcome: Outcome) -> Admission:
        plan = charge.plan
        ctx.rate_headers = rate_headers(
            ctx.wire, outcome.states, plan.request_rates, plan.token_rates
        )
        if not outcome.allowed:
            ctx.decisions.append(f"limited:{_describe(plan.meters[outcome.refused or 0])}")
            raise _refusal(plan.meters, charge.priced_checks(), outcome)
        if plan.alerts and self._alerts is not None:
            self._alerts.after_admit(plan.meters, charge.checks, outcome.states)
        return charge

    def _plan(
        self, principal: Principal, model: str, ip: str | None, prompt: str | None = None
    ) -> Plan:
        """The caller's plan for ``model``, compiled once and reused until a period ends."""
        planner = self._planner
        tenant = self._tenant_name(principal.tenant_id) if planner.uses_tenant_name else None
        if not planner.uses_ip:
            ip = None  # not part of any counter: one plan for every address
        if not planner.uses_prompt:
            prompt = None  # no rule names a prompt: prompt calls share the model's plan
        key = (
            principal.name,
            principal.key_id,
            principal.app_id,
            principal.team_id,
            principal.tenant_id,
            principal.user_id,
            model,
            ip,
            tenant,
            prompt,
        )
        now = self._clock()
        plan = self._plans.get(key)
        if plan is None or now >= plan.until:
            if len(self._plans) >= _PLANS_LIMIT:
                self._plans.clear()
            plan = self._plans[key] = planner.plan(Call(principal, model, ip, tenant, prompt), now)
        return plan

    def settle(
        self, ctx: RequestContext, admission: Admission, usage: Usage | None
    ) -> Awaitable[None] | None:
        """Correct the estimates with ``usage`` and ``ctx.cost_micros`` (what the call
        really cost, priced by accounting) and free slots. Returns what the call's reply
        must wait for before its last bytes go out: the round trip that frees its slots
        in a shared store (None: nothing to wait for)."""
        plan = admission.plan
        adjustments: list[Adjustment] = []
        if plan.token_counters:
            used = (usage.prompt_tokens + usage.completion_tokens) if usage is not None else 0
            delta = used - admission.tokens
            if delta:
                for check in plan.token_counters:
                    adjustments.append(Adjustment(check, delta))
        if plan.usd_counters:
            delta = (ctx.cost_micros or 0) - admission.cost
            if delta:
                for check in plan.usd_counters:
                    adjustments.append(Adjustment(check, delta))
        if not adjustments and not plan.slots:
            return None
        settle_now = self._settle_now  # memory: at once, in line
        if settle_now is None and admission.fallback:
            settle_now = self._settle_fallback
        if settle_now is None:
            if plan.slots:
                return self._batcher.send(admission, adjustments, plan.releases(admission.token))
            self._batcher.add(admission, adjustments)
            return None
        totals = settle_now(adjustments, plan.slots)
        if plan.alerts:
            self._settled(admission, adjustments, totals)
        return None

    def _settled(
        self, admission: Admission, adjustments: list[Adjustment], totals: list[int]
    ) -> None:
        if self._alerts is not None and adjustments and admission.plan.alerts:
            meters = admission.plan.meters
            self._alerts.after_settle(meters, admission.checks, adjustments, totals)

    async def close(self) -> None:
        """Send the settlements still waiting (a clean stop loses none)."""
        await self._batcher.close()


def _unenforceable(model: str) -> PermissionDeniedError:
    """The refusal a USD budget gives a deployment without a price (it cannot be enforced)."""
    return PermissionDeniedError(
        f"The model `{model}` has no price, so the USD budget that applies to "
        "you cannot be enforced; an admin must set `price:` on its deployment.",
        code="price_unknown",
        param="model",
    )


def _unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError(
        "Rate limits and budgets cannot be checked right now; try again shortly.",
        code="limits_unavailable",
        headers={"retry-after": "1"},
    )


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

"""The pipeline's one door to traffic control and pricing: admit before, settle after.

Every model call passes here twice: ``charge`` then ``decide`` (limits and
budgets, on estimates, before the upstream is called), and ``settle`` (the real
usage and cost, when the call is over — also when it failed, which gives the
token and cost estimates back while the request itself stays counted).
"""

from __future__ import annotations

from collections.abc import Callable

from gatewise.core.context import RequestContext
from gatewise.core.types import Usage
from gatewise.policies.traffic import Admission, TrafficControl
from gatewise.pricing.book import PriceBook
from gatewise.pricing.cost import cost_micros
from gatewise.routing.catalog import Route


class CallMeter:
    def __init__(self, traffic: TrafficControl | None, prices: PriceBook) -> None:
        self.traffic = traffic
        self.prices = prices
        #: Whether ``decide_now`` can be used: no limits, or a store that decides without
        #: I/O (memory). The pipeline then skips a coroutine on every call.
        self.synchronous = traffic is None or traffic.synchronous

    def charge(
        self,
        ctx: RequestContext,
        route: Route,
        count_prompt: Callable[[], int],
        output_tokens: int | None,
    ) -> Admission | None:
        """What the call is charged, priced at its first deployment (None: nothing counts
        it); ``decide`` or, when ``synchronous``, ``decide_now`` admits it."""
        traffic = self.traffic
        if traffic is None:
            return None
        first = route.targets[0]
        price = self.prices.price(first.provider.name, first.model)
        return traffic.charge(ctx, route.name, count_prompt, output_tokens, price)

    async def decide(self, ctx: RequestContext, charge: Admission) -> Admission:
        assert self.traffic is not None  # there is a charge
        return await self.traffic.decide(ctx, charge)

    def decide_now(self, ctx: RequestContext, charge: Admission) -> Admission:
        assert self.traffic is not None  # there is a charge
        return self.traffic.decide_now(ctx, charge)

    def settle(self, ctx: RequestContext, admission: Admission | None, usage: Usage | None) -> None:
        attempt = ctx.attempts[-1] if ctx.attempts else None
        price = self.prices.price(attempt.provider, attempt.model) if attempt else None
        if self.traffic is not None:
            self.traffic.settle(ctx, admission, usage, price)
        elif price is not None:  # a call without usage (it failed) is not billed
            ctx.cost_micros = cost_micros(price, usage) if usage is not None else 0

"""Admission: the corridor's step for limits and budgets.

``before`` charges the call against every limit and budget that applies (on
estimates: the call's prompt count, the output it allows, priced at the first
deployment of its plan) and refuses it with a 429 when one is exhausted.
``before_attempt`` re-prices a failover: a deployment dearer than the one
charged is charged the difference, and refused if a hard USD budget cannot
take it, before it is called; so a budget is overshot by at most one call's
estimate. ``finish`` settles: corrects the charges with what the call really
used and cost (priced by accounting, which finishes first) and frees its
concurrency slots; the reply's last bytes wait until a freed slot reached a
shared store (the caller's next call may go to another replica).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

from gatewise.core.types import ChatRequest
from gatewise.corridor.call import Call
from gatewise.corridor.step import Reply, Step
from gatewise.policies.traffic import Admission, TrafficControl
from gatewise.pricing.book import PriceBook
from gatewise.routing.catalog import Target


@dataclass(slots=True)
class _Charged:
    admission: Admission
    target: Target  # the deployment the charge is priced at


class AdmissionStep(Step):
    name = "admission"

    def __init__(self, traffic: TrafficControl, prices: PriceBook) -> None:
        self.traffic = traffic
        self.prices = prices
        # The memory store decides without I/O: admit it without awaiting anything.
        self._synchronous = traffic.synchronous

    async def before(self, call: Call) -> Reply | None:
        principal = call.principal
        if principal is None:
            return None
        target = call.plan[0]
        request = call.request
        output = request.output_token_limit if isinstance(request, ChatRequest) else 0
        traffic = self.traffic
        ctx = call.ctx
        charge = traffic.charge(
            ctx,
            principal,
            call.model,
            call.prompt_tokens,
            output,
            self.prices.price(target.provider.name, target.model),
        )
        if charge is None:
            return None
        if self._synchronous:
            admission = traffic.decide_now(ctx, charge)
        else:
            admission = await traffic.decide(ctx, charge)
        call.notes[self] = _Charged(admission, target)
        return None

    async def before_attempt(self, call: Call, target: Target) -> None:
        charged: _Charged | None = call.notes.get(self)
        if charged is None or charged.target is target:
            return
        price = self.prices.price(target.provider.name, target.model)
        extra = self.traffic.extra_cost(charged.admission, price, call.model)
        if extra:
            await self.traffic.recharge(call.ctx, charged.admission, extra)
        charged.target = target

    def finish(self, call: Call) -> Awaitable[None] | None:
        charged: _Charged | None = call.notes.pop(self, None)
        if charged is None:
            return None
        ctx = call.ctx
        # A reply from a cache called no upstream: it settles at zero tokens (and costs 0).
        cached = ctx.cache is not None and ctx.cache.endswith("hit")
        return self.traffic.settle(ctx, charged.admission, None if cached else ctx.usage)

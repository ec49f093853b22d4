"""Accounting: what a call cost, priced at the deployment that answered it.

A step with a ``finish`` hook only: when the call is over it prices the usage
the corridor recorded (the upstream's, or the gateway's estimate) at the last
attempted deployment's price and puts it on the context (``cost_micros``), where
admission's settlement, the usage records and the logs read it. A call that
failed is not billed (cost 0 when priced); a deployment without a price leaves
the cost unknown (None).
"""

from __future__ import annotations

from gatewise.corridor.call import Call
from gatewise.corridor.step import Step
from gatewise.pricing.book import PriceBook
from gatewise.pricing.cost import cost_micros


class AccountingStep(Step):
    name = "accounting"

    def __init__(self, prices: PriceBook) -> None:
        self.prices = prices

    def finish(self, call: Call) -> None:
        ctx = call.ctx
        attempts = ctx.attempts
        if not attempts:
            return  # nothing was called: nothing to price
        attempt = attempts[-1]
        price = self.prices.price(attempt.provider, attempt.model)
        if price is not None:
            usage = ctx.usage  # recorded only when the call got a reply (or a stream)
            ctx.cost_micros = cost_micros(price, usage) if usage is not None else 0

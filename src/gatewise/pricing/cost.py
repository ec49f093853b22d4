"""What one call costs, in whole micro-USD, from its price and its token usage.

All arithmetic is exact (integers, see ``catalog.Units``) and the result is rounded up to
the next micro-USD: a gateway that enforces budgets must never under-charge, and a
micro-dollar per call is noise.
"""

from __future__ import annotations

from decimal import Decimal

from gatewise.config.pricing import PriceConfig
from gatewise.core.types import Usage
from gatewise.pricing.catalog import MICROS_PER_USD, Price, builtin_price

__all__ = ["cost_micros", "estimate_cost_micros", "price_for", "price_from_config"]

_ZERO = Decimal(0)


def price_from_config(config: PriceConfig) -> Price:
    """A configured price (USD) as micro-USD rates; unset rates are zero, or the input rate."""

    def micros(usd: Decimal | None) -> Decimal | None:
        return None if usd is None else usd * MICROS_PER_USD

    return Price(
        input=micros(config.input_per_million) or _ZERO,
        output=micros(config.output_per_million) or _ZERO,
        cached_input=micros(config.cached_input_per_million),
        cache_write=micros(config.cache_write_per_million),
        per_call=micros(config.per_call) or _ZERO,
    )


def price_for(upstream_model: str, override: PriceConfig | None) -> Price | None:
    """The price of a deployment: its configured override if any, else the catalog's.

    The override replaces the catalog price as a whole (no field-by-field merge): an
    operator who writes a price states the whole contract, and a half-merged price
    (say, a negotiated input rate next to a list output rate) is a silent surprise.
    None means unknown; the caller records the cost as unknown.
    """
    if override is not None:
        return price_from_config(override)
    return builtin_price(upstream_model)


def _count(value: object) -> int:
    """A token count from a usage detail, tolerating absent or malformed values."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def cost_micros(price: Price, usage: Usage) -> int:
    """The cost of a finished call in micro-USD, rounded up.

    Cached prompt tokens (``prompt_tokens_details.cached_tokens``) are billed at the
    cached rate, cache writes (``cache_write_tokens``, Anthropic) at the write rate, the
    rest of the prompt at the input rate, completion tokens at the output rate; then the
    per-call price. The prompt length picks the tier where a model has two.
    """
    prompt = max(usage.prompt_tokens, 0)
    rates = price.for_prompt(prompt).units
    cached = written = 0
    details = usage.prompt_tokens_details
    if details:
        cached = min(_count(details.get("cached_tokens")), prompt)
        written = min(_count(details.get("cache_write_tokens")), prompt - cached)
    amount = (
        (prompt - cached - written) * rates.input
        + cached * rates.cached_input
        + written * rates.cache_write
        + max(usage.completion_tokens, 0) * rates.output
        + rates.per_call
    )
    return -(-amount // rates.divisor)


def estimate_cost_micros(price: Price, prompt_tokens: int, max_output_tokens: int) -> int:
    """An upper bound of a call's cost before it runs, for admission against a budget.

    The whole prompt at the dearer of the input and cache-write rates (no cache hits
    assumed) and every allowed output token at the output rate.
    """
    prompt = max(prompt_tokens, 0)
    rates = price.for_prompt(prompt).units
    amount = (
        prompt * max(rates.input, rates.cache_write)
        + max(max_output_tokens, 0) * rates.output
        + rates.per_call
    )
    return -(-amount // rates.divisor)

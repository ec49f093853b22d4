"""The ``price:`` of a deployment: what its upstream model costs, when the built-in catalog
does not know it (Azure deployment names, fine-tunes, self-hosted models) or is wrong.

Prices are USD: per million tokens, or per call for models billed by the request (image,
moderation, OCR endpoints). Write them as strings (``"0.15"``) or integers: a YAML float
is rejected, because ``0.1`` is not 0.1 in binary and money must be exact. An override
replaces the catalog's price as a whole: a rate left out is zero (input, output, per call)
or the input rate (cached input, cache writes).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from gatewise.config.base import Strict

__all__ = ["Money", "PriceConfig", "exact_money"]


def exact_money(what: str) -> Callable[[Any], Any]:
    """A before-validator for amounts of money: what converts to Decimal exactly passes;
    floats (and booleans) are refused by name, since 0.1 is not 0.1 in binary."""

    def check(value: Any) -> Any:
        if isinstance(value, bool | float):
            raise ValueError(
                f"{value!r} is a float: write {what} as strings, e.g. '0.15' (floats are inexact)"
            )
        if isinstance(value, str | int | Decimal):
            return value
        raise ValueError(f"an amount must be a string or an integer, not {type(value).__name__}")

    return check


Money = Annotated[
    Decimal,
    BeforeValidator(exact_money("prices")),
    Field(ge=0, allow_inf_nan=False, max_digits=24, decimal_places=9),
]
"""USD as an exact, finite, non-negative Decimal (at most nine places: a nano-dollar)."""


class PriceConfig(Strict):
    """A deployment's price, USD. At least one rate must be set."""

    input_per_million: Money | None = Field(None, description="USD per million prompt tokens.")
    output_per_million: Money | None = Field(
        None, description="USD per million completion tokens (reasoning tokens included)."
    )
    cached_input_per_million: Money | None = Field(
        None, description="USD per million prompt tokens read from the provider's cache."
    )
    cache_write_per_million: Money | None = Field(
        None, description="USD per million prompt tokens written to the cache (Anthropic)."
    )
    per_call: Money | None = Field(None, description="USD per request, on top of tokens.")

    @model_validator(mode="after")
    def _some_rate(self) -> PriceConfig:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError(
                "a price needs at least one of input_per_million, output_per_million, "
                "cached_input_per_million, cache_write_per_million or per_call"
            )
        return self

"""Prices and costs: the built-in catalog, per-deployment overrides, and integer micro-USD
costs of calls (never floats)."""

from gatewise.pricing.catalog import (
    BUILTIN_PRICES,
    CATALOG_DATE,
    CHAT_MODELS,
    MICROS_PER_USD,
    Price,
    builtin_price,
)
from gatewise.pricing.cost import cost_micros, estimate_cost_micros, price_for, price_from_config

__all__ = [
    "BUILTIN_PRICES",
    "CATALOG_DATE",
    "CHAT_MODELS",
    "MICROS_PER_USD",
    "Price",
    "builtin_price",
    "cost_micros",
    "estimate_cost_micros",
    "price_for",
    "price_from_config",
]

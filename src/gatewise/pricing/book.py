"""Each deployment's price, looked up once: the config's override, else the catalog's."""

from __future__ import annotations

from collections.abc import Mapping

from gatewise.config.pricing import PriceConfig
from gatewise.pricing.catalog import Price
from gatewise.pricing.cost import price_for


class PriceBook:
    """Prices by (provider name, upstream model), memoised: the hot path pays a dict lookup."""

    def __init__(self, overrides: Mapping[tuple[str, str], PriceConfig]) -> None:
        self._overrides = dict(overrides)
        self._known: dict[tuple[str, str], Price | None] = {}

    def price(self, provider: str, upstream_model: str) -> Price | None:
        key = (provider, upstream_model)
        try:
            return self._known[key]
        except KeyError:
            found = self._known[key] = price_for(upstream_model, self._overrides.get(key))
            return found

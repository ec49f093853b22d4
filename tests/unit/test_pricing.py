"""Pricing: catalog lookup, exact integer micro-USD costs, and the price override's validation."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from io import StringIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from ruamel.yaml import YAML

from gatewise.config.pricing import PriceConfig
from gatewise.core.types import Usage
from gatewise.formats.anthropic import usage_from_anthropic
from gatewise.pricing import (
    BUILTIN_PRICES,
    CHAT_MODELS,
    MICROS_PER_USD,
    Price,
    builtin_price,
    cost_micros,
    estimate_cost_micros,
    price_for,
)


def usage(prompt: int, completion: int, cached: int | None = None) -> Usage:
    details = None if cached is None else {"cached_tokens": cached}
    return Usage(prompt, completion, prompt + completion, prompt_tokens_details=details)


def catalog(model: str) -> Price:
    price = builtin_price(model)
    assert price is not None, model
    return price


# --- lookup ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "known"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("gpt-5.2-2025-12-11", "gpt-5.2"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
        ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("mistral-large-latest", "mistral-large"),
        ("codestral-2508", "codestral"),
        ("GPT-4.1-Mini", "gpt-4.1-mini"),
    ],
)
def test_dated_and_aliased_names_find_their_model(upstream: str, known: str) -> None:
    assert builtin_price(upstream) is BUILTIN_PRICES[known]


def test_an_exact_snapshot_entry_wins_over_its_family_prefix() -> None:
    assert catalog("gpt-4o-2024-05-13").input == 5 * MICROS_PER_USD
    assert catalog("gpt-4o-2024-11-20").input == Decimal("2.50") * MICROS_PER_USD


@pytest.mark.parametrize(
    "upstream",
    [
        "my-azure-deployment",
        "gpt-4o-realtime-preview",  # a different product, not a gpt-4o snapshot
        "claude-opus-4-9",  # a future model, not claude-opus-4 (single-digit suffix)
        "gpt-5.9",  # not gpt-5
        "llama-3.3-70b",
        "",
    ],
)
def test_unknown_models_have_no_price(upstream: str) -> None:
    assert builtin_price(upstream) is None
    assert price_for(upstream, None) is None


# --- costs ---------------------------------------------------------------------------


def test_gpt_4o_bills_cached_tokens_at_the_cached_rate() -> None:
    # 600 fresh x $2.50/M + 400 cached x $1.25/M + 500 out x $10/M = $0.007
    assert cost_micros(catalog("gpt-4o-2024-08-06"), usage(1000, 500, cached=400)) == 7000
    # the same call without the cache hit: 1000 x $2.50/M + 500 x $10/M = $0.0075
    assert cost_micros(catalog("gpt-4o"), usage(1000, 500)) == 7500


def test_fractions_of_a_micro_dollar_round_up() -> None:
    # one gpt-4o-mini prompt token costs 0.15 micro-USD: never zero
    assert cost_micros(catalog("gpt-4o-mini"), usage(1, 0)) == 1
    assert cost_micros(catalog("gpt-4o-mini"), usage(0, 0)) == 0
    # 7 x 0.15 + 3 x 0.60 = 2.85 -> 3
    assert cost_micros(catalog("gpt-4o-mini"), usage(7, 3)) == 3


def test_anthropic_cache_reads_and_writes_have_their_own_rates() -> None:
    used = usage_from_anthropic(
        input_tokens=100,
        output_tokens=200,
        cache_creation_input_tokens=1000,
        cache_read_input_tokens=2000,
    )
    # 100 x $3 + 2000 x $0.30 + 1000 x $3.75 + 200 x $15, per million = $0.00765
    assert cost_micros(catalog("claude-sonnet-4-5-20250929"), used) == 7650


def test_gemini_pro_long_prompts_are_billed_at_the_higher_tier() -> None:
    price = catalog("gemini-2.5-pro")
    # 200k prompt is still the short tier: 200000 x $1.25 + 1000 x $10 = $0.26
    assert cost_micros(price, usage(200_000, 1000)) == 260_000
    # above 200k every token costs more: 250000 x $2.50 + 1000 x $15 = $0.64
    assert cost_micros(price, usage(250_000, 1000)) == 640_000


def test_cached_tokens_beyond_the_prompt_are_not_a_discount_below_zero() -> None:
    # a malformed report (cached > prompt) bills the prompt as cached, no negative tokens
    assert cost_micros(catalog("gpt-4o"), usage(100, 0, cached=500)) == 125
    weird = Usage(10, 0, 10, prompt_tokens_details={"cached_tokens": "x"})
    assert cost_micros(catalog("gpt-4o"), weird) == 25


def test_a_model_without_a_cached_rate_bills_cached_tokens_as_input() -> None:
    assert cost_micros(catalog("mistral-small-latest"), usage(1000, 0, cached=1000)) == 100


def test_override_with_per_call_price() -> None:
    price = price_for("dall-e-3", PriceConfig(per_call="0.04"))
    assert price is not None
    assert cost_micros(price, Usage()) == 40_000
    mixed = price_for(
        "gpt-4o",
        PriceConfig(input_per_million="0.15", output_per_million="0.60", per_call="0.01"),
    )
    assert mixed is not None
    # 10 x 0.15 + 10 x 0.60 = 7.5 micro + 10000 per call -> 10008
    assert cost_micros(mixed, usage(10, 10)) == 10_008


def test_an_override_replaces_the_catalog_price_whole() -> None:
    price = price_for("gpt-4o", PriceConfig(input_per_million="1"))
    assert price == Price(input=Decimal(MICROS_PER_USD))
    # output is free and cached tokens cost the input rate: nothing leaks in from gpt-4o
    assert cost_micros(price, usage(1000, 1000, cached=500)) == 1000


def test_estimate_is_an_upper_bound_of_the_actual_cost() -> None:
    price = catalog("claude-sonnet-4-5")
    # the prompt at the cache-write rate ($3.75), all 100 output tokens at $15
    assert estimate_cost_micros(price, 1000, 100) == 5250
    assert cost_micros(price, usage(1000, 100)) == 4500
    assert estimate_cost_micros(catalog("gemini-2.5-pro"), 300_000, 0) == 750_000
    assert estimate_cost_micros(catalog("gpt-4o"), 0, 0) == 0


def decimal_cost(price: Price, prompt: int, completion: int, cached: int, written: int) -> int:
    """The textbook formula in Decimal: what the integer arithmetic must equal exactly."""
    rates = price.for_prompt(prompt)
    cached_rate = rates.input if rates.cached_input is None else rates.cached_input
    write_rate = rates.input if rates.cache_write is None else rates.cache_write
    amount = (
        (prompt - cached - written) * rates.input
        + cached * cached_rate
        + written * write_rate
        + completion * rates.output
    )
    total = amount / Decimal(10**6) + rates.per_call
    return int(total.to_integral_value(rounding=ROUND_CEILING))


rate = st.decimals(min_value=0, max_value=10**9, places=7, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    rates=st.tuples(rate, rate, st.none() | rate, st.none() | rate, rate),
    prompt=st.integers(0, 2_000_000),
    completion=st.integers(0, 200_000),
    cached_share=st.floats(0, 1),
    written_share=st.floats(0, 1),
)
def test_integer_costs_equal_the_decimal_formula(
    rates: tuple[Decimal, Decimal, Decimal | None, Decimal | None, Decimal],
    prompt: int,
    completion: int,
    cached_share: float,
    written_share: float,
) -> None:
    price = Price(*rates)
    cached = int(prompt * cached_share)
    written = int((prompt - cached) * written_share)
    details = {"cached_tokens": cached, "cache_write_tokens": written}
    used = Usage(prompt, completion, prompt + completion, prompt_tokens_details=details)
    assert cost_micros(price, used) == decimal_cost(price, prompt, completion, cached, written)
    dearer = max(price.input, price.cache_write or price.input)
    estimate = decimal_cost(
        Price(dearer, price.output, per_call=price.per_call), prompt, completion, 0, 0
    )
    assert estimate_cost_micros(price, prompt, completion) == estimate


def test_costs_are_ints() -> None:
    assert type(cost_micros(catalog("o3"), usage(12_345, 678))) is int
    assert type(estimate_cost_micros(catalog("o3"), 12_345, 678)) is int


# --- the catalog itself ----------------------------------------------------------------


def test_every_catalog_entry_is_sane() -> None:
    """Catches swapped columns and typos: rates positive, output dearer, cache cheaper."""
    assert len(BUILTIN_PRICES) >= 60
    for name, price in BUILTIN_PRICES.items():
        tiers = [price] if price.long is None else [price, price.long]
        for tier in tiers:
            assert tier.input > 0, name
            assert tier.output >= 0, name
            if name in CHAT_MODELS:
                assert tier.output >= tier.input, name
            else:
                assert tier.output == 0, name
            if tier.cached_input is not None:
                assert tier.cached_input < tier.input, name
            if tier.cache_write is not None:
                assert tier.cache_write > tier.input, name
        if price.long is not None:
            assert price.long_above is not None and price.long_above >= 100_000, name
            assert price.long.input > price.input and price.long.output > price.output, name
    for required in (
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o3",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "claude-opus-4-5",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
        "claude-3-7-sonnet",
        "claude-3-5-haiku",
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-2.0-flash",
        "gemini-embedding-001",
        "mistral-large",
        "mistral-medium",
        "mistral-small",
        "codestral",
        "mistral-embed",
    ):
        assert required in BUILTIN_PRICES, required


def test_known_list_prices() -> None:
    """Spot checks against the providers' pages (USD per million tokens)."""
    per_m = Decimal(MICROS_PER_USD)
    assert catalog("gpt-5") == Price(1250000, 10000000, Decimal("125000"))
    assert catalog("claude-haiku-4-5").cache_write == Decimal("1.25") * per_m
    assert catalog("text-embedding-3-small").input == Decimal("0.02") * per_m


# --- the price override in the config ---------------------------------------------------


def test_config_accepts_strings_and_integers_exactly() -> None:
    config = PriceConfig(
        input_per_million="0.15", output_per_million=2, cached_input_per_million=Decimal("0.075")
    )
    assert config.input_per_million == Decimal("0.15")
    assert config.output_per_million == Decimal(2)
    assert config.cached_input_per_million == Decimal("0.075")


@pytest.mark.parametrize("value", [0.15, 1.0])
def test_config_rejects_floats_with_advice(value: float) -> None:
    with pytest.raises(ValidationError, match=r"write prices as strings, e\.g\. '0\.15'"):
        PriceConfig(input_per_million=value)


def test_config_rejects_a_yaml_float() -> None:
    data = YAML(typ="rt").load(StringIO("input_per_million: 0.15\n"))
    with pytest.raises(ValidationError, match="write prices as strings"):
        PriceConfig.model_validate(dict(data))
    quoted = YAML(typ="rt").load(StringIO("input_per_million: '0.15'\n"))
    assert PriceConfig.model_validate(dict(quoted)).input_per_million == Decimal("0.15")


@pytest.mark.parametrize("value", ["-0.01", -1, "NaN", "Infinity", "abc", True, "0.0000000001"])
def test_config_rejects_negative_non_finite_and_odd_values(value: object) -> None:
    with pytest.raises(ValidationError):
        PriceConfig(per_call=value)


def test_config_needs_at_least_one_rate() -> None:
    with pytest.raises(ValidationError, match="at least one of"):
        PriceConfig()


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        PriceConfig.model_validate({"input_per_milion": "1"})


def test_a_zero_price_is_allowed() -> None:
    price = price_for("free-model", PriceConfig(input_per_million="0"))
    assert price is not None
    assert cost_micros(price, usage(10_000, 10_000)) == 0

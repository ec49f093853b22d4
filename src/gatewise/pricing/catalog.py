"""Built-in list prices of the major hosted models, and lookup by upstream model name.

Sources (standard tier, pay-as-you-go, USD):
  https://developers.openai.com/api/docs/pricing  (was platform.openai.com/docs/pricing)
  https://platform.claude.com/docs/en/about-claude/pricing
  https://ai.google.dev/gemini-api/docs/pricing
  https://mistral.ai/pricing#api-pricing and https://docs.mistral.ai/models
Cross-checked against models.dev (github.com/anomalyco/models.dev). The table reflects
those pages as of October 2026 (CATALOG_DATE). Models whose price we could not confirm
from two sources are left out: their calls cost "unknown" until a deployment sets
``price:`` in the config.

Modelled: input, output, cached input (cache read) and, for Anthropic, 5-minute cache
writes; prompt-length tiers (Gemini Pro above 200k prompt tokens, Claude Sonnet 4/4.5
with the 1M context above 200k, Claude Haiku 5.5 above 100k, GPT-5.5 above 272k), where
the whole request, output included, is billed at the higher rate. Not modelled: batch and
flex discounts, priority/"fast" tiers, 1-hour cache writes (billed at the 5-minute rate,
an under-charge), Gemini audio input (billed at the text rate, an under-charge), cache
storage per hour, and tool fees (web search, code interpreter).

Rates are kept as micro-USD per million tokens (Decimal), so a per-token price is a
micro-USD amount and nothing is ever a float.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

__all__ = [
    "BUILTIN_PRICES",
    "CATALOG_DATE",
    "CHAT_MODELS",
    "MICROS_PER_USD",
    "Price",
    "builtin_price",
]

CATALOG_DATE = "2026-10"
MICROS_PER_USD = 1_000_000
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Price:
    """Rates in micro-USD per million tokens; ``per_call`` in micro-USD per request.

    ``cached_input`` / ``cache_write`` of None mean "billed like ordinary input".
    ``long`` is the price of a request whose prompt exceeds ``long_above`` tokens.
    """

    input: Decimal = _ZERO
    output: Decimal = _ZERO
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    per_call: Decimal = _ZERO
    long_above: int | None = None
    long: Price | None = None
    #: The rates as whole numbers, for cost arithmetic on every call (see ``Units``).
    units: Units = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", Units.of(self))

    def for_prompt(self, prompt_tokens: int) -> Price:
        """The tier a request with this many prompt tokens is billed at."""
        if (
            self.long is not None
            and self.long_above is not None
            and prompt_tokens > self.long_above
        ):
            return self.long
        return self


@dataclass(frozen=True, slots=True)
class Units:
    """A price's rates as integers in units of ``1 / scale`` micro-USD per million tokens.

    ``scale`` is the power of ten that makes every rate whole, so a call's cost is exact
    integer arithmetic: ``ceil(sum(tokens * rate) / divisor)`` micro-USD, with the
    per-call price already in the same units. Decimal would cost ~5 µs per call.
    """

    input: int
    output: int
    cached_input: int  # the input rate where the price has none
    cache_write: int  # the input rate where the price has none
    per_call: int  # micro-USD per call, times divisor
    divisor: int  # scale * 10**6 (per million tokens)

    @classmethod
    def of(cls, price: Price) -> Units:
        cached = price.input if price.cached_input is None else price.cached_input
        write = price.input if price.cache_write is None else price.cache_write
        rates = [
            Decimal(rate) for rate in (price.input, price.output, cached, write, price.per_call)
        ]
        places = max(max(0, -int(rate.normalize().as_tuple().exponent)) for rate in rates)
        scale = 10**places
        whole = [int(rate * scale) for rate in rates]
        divisor = scale * 1_000_000
        # per_call is per call, not per million: in the same units it is times 10**6.
        return cls(whole[0], whole[1], whole[2], whole[3], whole[4] * 1_000_000, divisor)


def _micros(usd: str | None) -> Decimal | None:
    return None if usd is None else Decimal(usd) * MICROS_PER_USD


def _p(
    input_usd: str,
    output_usd: str,
    cached: str | None = None,
    write: str | None = None,
    *,
    long_above: int | None = None,
    long: Price | None = None,
) -> Price:
    """A price from USD-per-million strings, as the providers publish them."""
    return Price(
        input=Decimal(input_usd) * MICROS_PER_USD,
        output=Decimal(output_usd) * MICROS_PER_USD,
        cached_input=_micros(cached),
        cache_write=_micros(write),
        long_above=long_above,
        long=long,
    )


# --- OpenAI (input, output, cached input) -------------------------------------------
_GPT5 = _p("1.25", "10.00", "0.125")
_GPT52 = _p("1.75", "14.00", "0.175")
_OPENAI: dict[str, Price] = {
    "gpt-5.5": _p("5.00", "30.00", "0.50", long_above=272_000, long=_p("10.00", "45.00", "1.00")),
    "gpt-5.4": _p("2.50", "15.00", "0.25"),
    "gpt-5.4-mini": _p("0.75", "4.50", "0.075"),
    "gpt-5.2": _GPT52,
    "gpt-5.2-chat-latest": _GPT52,
    "gpt-5.2-codex": _GPT52,
    "gpt-5.2-pro": _p("21.00", "168.00"),
    "gpt-5.1": _GPT5,
    "gpt-5.1-chat-latest": _GPT5,
    "gpt-5.1-codex": _GPT5,
    "gpt-5.1-codex-max": _GPT5,
    "gpt-5.1-codex-mini": _p("0.25", "2.00", "0.025"),
    "gpt-5": _GPT5,
    "gpt-5-chat-latest": _GPT5,
    "gpt-5-codex": _GPT5,
    "gpt-5-mini": _p("0.25", "2.00", "0.025"),
    "gpt-5-nano": _p("0.05", "0.40", "0.005"),
    "gpt-5-pro": _p("15.00", "120.00"),
    "gpt-4.1": _p("2.00", "8.00", "0.50"),
    "gpt-4.1-mini": _p("0.40", "1.60", "0.10"),
    "gpt-4.1-nano": _p("0.10", "0.40", "0.025"),
    "gpt-4o": _p("2.50", "10.00", "1.25"),
    "gpt-4o-2024-05-13": _p("5.00", "15.00"),  # the first gpt-4o snapshot kept its price
    "gpt-4o-mini": _p("0.15", "0.60", "0.075"),
    "gpt-4-turbo": _p("10.00", "30.00"),
    "gpt-3.5-turbo": _p("0.50", "1.50"),
    "o4-mini": _p("1.10", "4.40", "0.275"),
    "o4-mini-deep-research": _p("2.00", "8.00", "0.50"),
    "o3": _p("2.00", "8.00", "0.50"),
    "o3-pro": _p("20.00", "80.00"),
    "o3-mini": _p("1.10", "4.40", "0.55"),
    "o3-deep-research": _p("10.00", "40.00", "2.50"),
    "o1": _p("15.00", "60.00", "7.50"),
    "o1-pro": _p("150.00", "600.00"),
    "o1-mini": _p("1.10", "4.40", "0.55"),
}

# --- Anthropic (input, output, cache read, 5-minute cache write) ---------------------
_OPUS_45 = _p("5.00", "25.00", "0.50", "6.25")
_OPUS_4 = _p("15.00", "75.00", "1.50", "18.75")
_SONNET_3 = _p("3.00", "15.00", "0.30", "3.75")
# Sonnet 4 and 4.5 with the 1M-token context: above 200k prompt tokens, every token costs more.
_SONNET_4 = _p(
    "3.00", "15.00", "0.30", "3.75", long_above=200_000, long=_p("6.00", "22.50", "0.60", "7.50")
)
_ANTHROPIC: dict[str, Price] = {
    "claude-fable-5-1": _p("10.00", "50.00", "0.25", "12.50"),
    "claude-fable-5": _p("10.00", "50.00", "1.00", "12.50"),
    "claude-opus-5-5": _p("4.00", "20.00", "0.20", "5.00"),
    "claude-opus-5": _OPUS_45,
    "claude-opus-4-8": _OPUS_45,
    "claude-opus-4-7": _OPUS_45,
    "claude-opus-4-6": _OPUS_45,
    "claude-opus-4-5": _OPUS_45,
    "claude-opus-4-1": _OPUS_4,
    "claude-opus-4-0": _OPUS_4,
    "claude-opus-4": _OPUS_4,  # claude-opus-4-20250514
    "claude-sonnet-5-5": _p("2.00", "10.00", "0.10", "2.50"),
    "claude-sonnet-5": _p("2.00", "10.00", "0.20", "2.50"),
    "claude-sonnet-4-6": _SONNET_3,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4-0": _SONNET_4,
    "claude-sonnet-4": _SONNET_4,  # claude-sonnet-4-20250514
    "claude-3-7-sonnet": _SONNET_3,
    "claude-3-5-sonnet": _SONNET_3,
    "claude-haiku-5-5": _p(
        "0.10",
        "0.50",
        "0.01",
        "0.125",
        long_above=100_000,
        long=_p("0.50", "2.50", "0.05", "0.625"),
    ),
    "claude-haiku-4-5": _p("1.00", "5.00", "0.10", "1.25"),
    "claude-3-5-haiku": _p("0.80", "4.00", "0.08", "1.00"),
    "claude-3-haiku": _p("0.25", "1.25", "0.03", "0.30"),
}

# --- Google Gemini API (input, output, cached input; text/image/video input) ---------
_GEMINI_3_PRO = _p("2.00", "12.00", "0.20", long_above=200_000, long=_p("4.00", "18.00", "0.40"))
_GOOGLE: dict[str, Price] = {
    "gemini-3.8-flash": _p("0.75", "3.75", "0.075"),  # introductory price through 2026-12-31
    "gemini-3.1-pro-preview": _GEMINI_3_PRO,
    "gemini-3-pro-preview": _GEMINI_3_PRO,
    "gemini-3-flash-preview": _p("0.50", "3.00", "0.05"),
    "gemini-2.5-pro": _p(
        "1.25", "10.00", "0.125", long_above=200_000, long=_p("2.50", "15.00", "0.25")
    ),
    "gemini-2.5-flash": _p("0.30", "2.50", "0.03"),
    "gemini-2.5-flash-lite": _p("0.10", "0.40", "0.01"),
    "gemini-2.0-flash": _p("0.10", "0.40", "0.025"),
    "gemini-2.0-flash-lite": _p("0.075", "0.30"),
}

# --- Mistral (input, output) ----------------------------------------------------------
# A bare family name (what ``-latest`` resolves to) carries the dearest price of the
# family's current versions, so an alias moving to a new version never under-charges.
_MISTRAL: dict[str, Price] = {
    "mistral-large": _p("2.00", "6.00"),
    "mistral-large-2411": _p("2.00", "6.00"),
    "mistral-large-2512": _p("0.50", "1.50"),
    "mistral-medium": _p("1.50", "7.50"),
    "mistral-medium-2604": _p("1.50", "7.50"),
    "mistral-medium-2508": _p("0.40", "2.00"),
    "mistral-medium-2505": _p("0.40", "2.00"),
    "mistral-small": _p("0.10", "0.30"),
    "magistral-medium": _p("2.00", "5.00"),
    "magistral-small": _p("0.50", "1.50"),
    "codestral": _p("0.30", "0.90"),
    "devstral-medium": _p("0.40", "2.00"),
    "devstral-small": _p("0.10", "0.30"),
    "pixtral-large": _p("2.00", "6.00"),
    "open-mistral-nemo": _p("0.15", "0.15"),
}

# --- Embeddings (input only) ----------------------------------------------------------
_EMBEDDING: dict[str, Price] = {
    "text-embedding-3-small": _p("0.02", "0"),
    "text-embedding-3-large": _p("0.13", "0"),
    "text-embedding-ada-002": _p("0.10", "0"),
    "gemini-embedding-001": _p("0.15", "0"),
    "mistral-embed": _p("0.10", "0"),
}

CHAT_MODELS: frozenset[str] = frozenset({**_OPENAI, **_ANTHROPIC, **_GOOGLE, **_MISTRAL})
BUILTIN_PRICES: dict[str, Price] = {**_OPENAI, **_ANTHROPIC, **_GOOGLE, **_MISTRAL, **_EMBEDDING}

# What may follow a known name and still be that model: dates and snapshot numbers of two
# or more digits (-2024-08-06, -20250929, -0125, -001, @20241022), -latest, -preview, -exp,
# -v2. A single digit is refused, so "claude-opus-4-9" never takes claude-opus-4's price;
# words are refused, so "gpt-4o-realtime-preview" never takes gpt-4o's.
_VERSION_SUFFIX = re.compile(r"(?:[-@:](?:\d{2,}|latest|preview|exp|v\d+))+")
_BY_LENGTH = sorted(BUILTIN_PRICES, key=len, reverse=True)


@lru_cache(maxsize=4096)
def builtin_price(upstream_model: str) -> Price | None:
    """The catalog price of an upstream model name, or None if it is not known.

    Exact match first (case-insensitive, ignoring a ``models/`` or ``vendor/`` path);
    otherwise the longest known name the model starts with, if what follows is only a
    version suffix (``gpt-4o-2024-08-06`` -> gpt-4o). Cached: names repeat on every call.
    """
    name = upstream_model.strip().lower().rpartition("/")[2]
    exact = BUILTIN_PRICES.get(name)
    if exact is not None:
        return exact
    for known in _BY_LENGTH:
        if name.startswith(known) and _VERSION_SUFFIX.fullmatch(name, len(known)):
            return BUILTIN_PRICES[known]
    return None

"""Upstream rate-limit headers: how much an upstream says it has left, and how long a
429 asks to wait. OpenAI-style ``x-ratelimit-*`` (resets as Go durations: ``6m0s``,
``20ms``), Anthropic's ``anthropic-ratelimit-*`` (resets as RFC 3339 times) and
``retry-after`` / ``retry-after-ms``. Malformed values are ignored, never raised.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: (remaining count, its reset, whether the reset is an RFC 3339 time) header names.
REQUESTS = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", False),
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset", True),
)
TOKENS = (
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", False),
    *(
        (f"anthropic-ratelimit-{kind}-remaining", f"anthropic-ratelimit-{kind}-reset", True)
        for kind in ("tokens", "input-tokens", "output-tokens")
    ),
)
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ms|us|µs|ns|h|m|s))+")


def _seconds(value: str | None) -> float | None:
    """A finite non-negative number, or None."""
    try:
        number = float(value.strip()) if value is not None else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _count(value: str | None) -> int | None:
    """A non-negative whole count, or None."""
    number = _seconds(value)
    return int(number) if number is not None and number.is_integer() else None


def _duration(value: str | None) -> float | None:
    """``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s`` (Go style) or plain seconds ``0.5``."""
    if value is None:
        return None
    text = value.strip()
    if _DURATION.fullmatch(text):
        return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))
    return _seconds(text)


def lowest(
    headers: Mapping[str, str],
    names: tuple[tuple[str, str, bool], ...],
    now: float,
    wall: float | None,
) -> tuple[int, float | None] | None:
    """The smallest remaining count among ``names`` and its reset deadline (or None)."""
    best: tuple[int, float | None] | None = None
    for remaining, reset, stamped in names:
        left = _count(headers.get(remaining))
        if left is not None and (best is None or left < best[0]):
            value = headers.get(reset)
            seconds = _until_stamp(value, wall) if stamped else _duration(value)
            best = (left, None if seconds is None else now + seconds)
    return best


def _until_stamp(value: str | None, wall: float | None) -> float | None:
    """Seconds from ``wall`` to an RFC 3339 time (0 when past), or None."""
    if value is None:
        return None
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return max(0.0, stamp.timestamp() - (time.time() if wall is None else wall))


def retry_after_seconds(headers: Mapping[str, str], wall: float | None = None) -> float | None:
    """How long a 429/503 asks to wait: ``retry-after-ms``, else ``retry-after`` (seconds
    or an HTTP date; a past date is 0); None when absent or malformed."""
    millis = _seconds(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        stamp = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return max(0.0, stamp.timestamp() - (time.time() if wall is None else wall))

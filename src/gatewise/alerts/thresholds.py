"""Deciding when a budget threshold is crossed, and sending each one only once.

"Once" must hold across every replica of the gateway, so the decision is a
SET-NX in the counter store (``once(key, ttl)`` is True for exactly one
caller). That is a round trip, and after a budget passes 50 % every further
request would repeat it; so a threshold already claimed (by us or another
replica) is remembered in-process and never asked about again this period.

The event body (``budget_event``) is plain JSON: money as exact decimal
strings (never floats), time as ISO 8601 UTC.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

__all__ = ["EVENT_TYPE", "Once", "ThresholdTracker", "budget_event", "format_usd"]

log = logging.getLogger(__name__)

#: ``once(key, ttl_seconds)``: True for the single caller that claims ``key`` first.
Once = Callable[[str, float], Awaitable[bool]]

EVENT_TYPE = "budget.threshold"
MICROS_PER_USD = 1_000_000
_MAX_REMEMBERED = 100_000


def reached(used: int, limit: int, thresholds: Sequence[int]) -> list[int]:
    """Thresholds (percent) that ``used`` of ``limit`` has reached, ascending, exact integers."""
    if limit <= 0:
        return []
    return sorted({pct for pct in thresholds if pct > 0 and used * 100 >= pct * limit})


class ThresholdTracker:
    """Returns each (budget, period, threshold) once, whichever replica sees it first."""

    def __init__(
        self,
        once: Once,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_remembered: int = _MAX_REMEMBERED,
    ) -> None:
        self._once = once
        self._clock = clock
        self._max = max_remembered
        # key -> local expiry time: thresholds already claimed (here or elsewhere).
        self._claimed: dict[str, float] = {}

    async def crossed(
        self,
        budget_key: str,
        period_id: str,
        used: int,
        limit: int,
        thresholds: Sequence[int],
        ttl: float,
    ) -> list[int]:
        """The thresholds newly reached by ``used``: each returned once per period, ascending.

        A failing store (e.g. Redis down) is logged and the threshold left for a later call.
        """
        candidates = reached(used, limit, thresholds)
        if not candidates:
            return []
        now = self._clock()
        keys: dict[int, str] = {}
        for pct in candidates:
            key = f"alert:{budget_key}:{period_id}:{pct}"
            expires = self._claimed.get(key)
            if expires is None or expires <= now:
                keys[pct] = key
        if not keys:
            return []
        answers = await asyncio.gather(
            *(self._once(key, ttl) for key in keys.values()), return_exceptions=True
        )
        won: list[int] = []
        for (pct, key), answer in zip(keys.items(), answers, strict=True):
            if isinstance(answer, BaseException):
                log.warning("could not record alert threshold %s: %r", key, answer)
                continue
            self._remember(key, now + ttl)
            if answer:
                won.append(pct)
        return won

    def _remember(self, key: str, expires: float) -> None:
        claimed = self._claimed
        if len(claimed) >= self._max:
            now = self._clock()
            for old in [k for k, until in claimed.items() if until <= now]:
                del claimed[old]
            if len(claimed) >= self._max:  # still full: forget the oldest half
                for old in list(claimed)[: len(claimed) // 2]:
                    del claimed[old]
        claimed[key] = expires


def format_usd(micros: int) -> str:
    """Integer micro-USD as an exact decimal string: 80123456 -> ``"80.123456"``."""
    return str(Decimal(micros).scaleb(-6))


def budget_event(
    *,
    budget: str,
    per: str,
    scope_id: str,
    period_id: str,
    threshold: int,
    used: int,
    limit: int,
    unit: Literal["usd", "tokens"],
    mode: Literal["hard", "soft"] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The JSON body of a ``budget.threshold`` event.

    ``used`` and ``limit`` are micro-USD when ``unit`` is ``usd`` (sent as exact
    decimal strings in dollars) or token counts (sent as integers). ``per`` is
    what the budget is kept for (tenant, team, app, key, user, model, global)
    and ``scope_id`` which one; ``mode`` (hard/soft), when given, is included.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    amounts: tuple[Any, Any] = (
        (format_usd(used), format_usd(limit)) if unit == "usd" else (used, limit)
    )
    event: dict[str, Any] = {
        "type": EVENT_TYPE,
        "time": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "budget": budget,
        "scope": {"per": per, "id": scope_id},
        "period": period_id,
        "threshold_percent": threshold,
        "unit": unit,
        "used": amounts[0],
        "limit": amounts[1],
    }
    if mode is not None:
        event["mode"] = mode
    return event

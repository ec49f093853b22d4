"""What limits do when the shared store is down: fail closed (503) or open (per-process limits).

``ResilientStore`` wraps the shared store. When it fails, ``closed`` re-raises
``StateUnavailableError`` (the gateway answers 503) and ``open`` serves from a
fallback store in this process, so limits still hold per worker. After a
failure the shared store is left alone for ``retry_after`` seconds, so requests
do not each wait for a timeout; the first call after that tries it again.

``settle`` goes to whichever store is in use when it runs. A call admitted by
one store and settled by the other is corrected in the wrong place; both stores
clamp (used never below 0, slots never below 0, refunds bank no credit), so the
error is bounded by the calls in flight when the state changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from gatewise.state.base import (
    Adjustment,
    Check,
    CounterStore,
    Outcome,
    Settlement,
    Slots,
    StateUnavailableError,
)
from gatewise.state.memory import MemoryCounterStore

log = logging.getLogger("gatewise.state")

T = TypeVar("T")


class ResilientStore:
    """A ``CounterStore`` that survives its primary's outages as configured."""

    def __init__(
        self,
        primary: CounterStore,
        *,
        on_error: Literal["open", "closed"],
        fallback: CounterStore | None = None,
        retry_after: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.on_error = on_error
        # Failing closed uses no fallback; failing open without one would mean no limits.
        self.fallback: CounterStore | None = None
        if on_error == "open":
            self.fallback = fallback if fallback is not None else MemoryCounterStore()
        self._retry_after = retry_after
        self._clock = clock
        self._down_until: float | None = None  # set while the primary is considered down

    @property
    def degraded(self) -> bool:
        """True while the primary is considered down (for health checks and metrics)."""
        return self._down_until is not None

    async def start(self) -> None:
        if self.fallback is not None:
            await self.fallback.start()
        try:
            await self.primary.start()
        except StateUnavailableError as exc:
            self._failed(exc)

    async def close(self) -> None:
        try:
            await self.primary.close()
        finally:
            if self.fallback is not None:
                await self.fallback.close()

    async def admit(self, checks: list[Check], settlement: Settlement | None = None) -> Outcome:
        return await self._route(lambda store: store.admit(checks, settlement))

    async def settle(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        return await self._route(lambda store: store.settle(adjustments, release))

    async def once(self, key: str, ttl: float) -> bool:
        return await self._route(lambda store: store.once(key, ttl))

    async def _route(self, call: Callable[[CounterStore], Awaitable[T]]) -> T:
        down_until = self._down_until
        if down_until is None or self._clock() >= down_until:
            try:
                result = await call(self.primary)
            except StateUnavailableError as exc:
                self._failed(exc)
                return await self._degraded(call, exc)
            if self._down_until is not None:
                self._down_until = None
                log.info("shared counter store is back; limits are shared again")
            return result
        return await self._degraded(call, None)

    async def _degraded(
        self, call: Callable[[CounterStore], Awaitable[T]], exc: StateUnavailableError | None
    ) -> T:
        if self.fallback is None:
            raise exc or StateUnavailableError("the shared counter store is unavailable")
        return await call(self.fallback)

    def _failed(self, exc: StateUnavailableError) -> None:
        if self._down_until is None:
            mode = "per-process limits" if self.fallback is not None else "refusing requests"
            log.warning("shared counter store failed (%s); %s", exc, mode)
        self._down_until = self._clock() + self._retry_after

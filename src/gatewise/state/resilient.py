"""What limits do when the shared store is down: fail closed (503) or open (per-process limits).

``ResilientStore`` wraps the shared store. When it fails, ``closed`` re-raises
``StateUnavailableError`` (the gateway answers 503) and ``open`` admits from a
fallback store in this process, which enforces this worker's share of every
limit (``share``: the number of worker processes; a limit of 10 over 4 workers
is 3 each), so the workers together stay near the limit. After a failure the
shared store is left alone for ``retry_after`` seconds, so requests do not each
wait for a timeout; the first call after that tries it again.

A call is settled where it was admitted (``Outcome.fallback`` says which):
``settle`` (and the settlement an admission carries) is for the shared store,
``settle_fallback`` for the fallback. A settlement the shared store cannot take
is kept and replayed when it is back (carried by the next admission, or sent
every ``retry_after`` seconds until it goes), so a slot whose release failed
does not stay taken for its whole TTL. What is kept is bounded: corrections
are summed per counter, and releases of slots that expired meanwhile are
dropped; beyond ``max_owed`` counters and slots, more are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from gatewise.state.base import (
    Adjustment,
    Check,
    CounterStore,
    Outcome,
    Quota,
    Rate,
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
        fallback: MemoryCounterStore | None = None,
        share: int = 1,
        retry_after: float = 1.0,
        max_owed: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.on_error = on_error
        # Failing closed uses no fallback; failing open without one would mean no limits.
        self.fallback: MemoryCounterStore | None = None
        if on_error == "open":
            self.fallback = fallback if fallback is not None else MemoryCounterStore()
        self._share = max(1, share)
        self._retry_after = retry_after
        self._clock = clock
        self._down_until: float | None = None  # set while the primary is considered down
        self._owed = Owed(max_owed, clock)
        self._replay: asyncio.Task[None] | None = None

    @property
    def degraded(self) -> bool:
        """True while the primary is considered down (for health checks and metrics)."""
        return self._down_until is not None

    @property
    def owed(self) -> int:
        """Counters and slots whose settlement waits for the primary."""
        return len(self._owed)

    async def start(self) -> None:
        if self.fallback is not None:
            await self.fallback.start()
        try:
            await self.primary.start()
        except StateUnavailableError as exc:
            self._failed(exc)

    async def close(self) -> None:
        replay, self._replay = self._replay, None
        if replay is not None:
            replay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await replay
        owed = self._owed.take()
        try:
            if owed is not None:  # a last try: a clean stop should lose nothing
                try:
                    await self.primary.settle(*owed)
                except StateUnavailableError as exc:
                    count = len(owed[0]) + len(owed[1])
                    log.warning("settlements of %d counters and slots lost: %s", count, exc)
            await self.primary.close()
        finally:
            if self.fallback is not None:
                await self.fallback.close()

    # -- the CounterStore interface -----------------------------------------------------

    async def admit(self, checks: list[Check], settlement: Settlement | None = None) -> Outcome:
        if not self._primary_up():
            if settlement is not None:
                self._keep(settlement)
            return await self._fallback_admit(checks, None)
        carried, owed = self._with_owed(settlement)
        try:
            outcome = await self.primary.admit(checks, carried)
        except StateUnavailableError as exc:
            self._failed(exc)
            if carried is not None:
                self._keep(carried)
            return await self._fallback_admit(checks, exc)
        self._back()
        if owed:
            outcome.settled = outcome.settled[owed:]
        return outcome

    async def settle(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        """Settle calls the primary admitted: now, or (it is down) later: returns []."""
        if not self._primary_up():
            self._keep((adjustments, release))
            return []
        carried, owed = self._with_owed((adjustments, release))
        assert carried is not None
        try:
            totals = await self.primary.settle(*carried)
        except StateUnavailableError as exc:
            self._failed(exc)
            self._keep(carried)
            return []
        self._back()
        return totals[owed:]

    def settle_fallback(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        """Settle calls the fallback admitted (``Outcome.fallback``), in line."""
        if self.fallback is None:
            return []
        share = self._share
        adjustments = [Adjustment(_shared(a.check, share), a.delta) for a in adjustments]
        return self.fallback.settle_now(adjustments, [_shared(s, share) for s in release])

    async def once(self, key: str, ttl: float) -> bool:
        if self._primary_up():
            try:
                result = await self.primary.once(key, ttl)
            except StateUnavailableError as exc:
                self._failed(exc)
                return await self._on_fallback(lambda store: store.once(key, ttl), exc)
            self._back()
            return result
        return await self._on_fallback(lambda store: store.once(key, ttl), None)

    # -- plumbing ----------------------------------------------------------------------

    def _primary_up(self) -> bool:
        down_until = self._down_until
        return down_until is None or self._clock() >= down_until

    async def _fallback_admit(
        self, checks: list[Check], exc: StateUnavailableError | None
    ) -> Outcome:
        share = self._share
        shared = checks if share == 1 else [_shared(check, share) for check in checks]
        outcome = await self._on_fallback(lambda store: store.admit(shared), exc)
        outcome.fallback = True
        return outcome

    async def _on_fallback(
        self, call: Callable[[CounterStore], Awaitable[T]], exc: StateUnavailableError | None
    ) -> T:
        if self.fallback is None:
            raise exc or StateUnavailableError("the shared counter store is unavailable")
        return await call(self.fallback)

    def _with_owed(self, settlement: Settlement | None) -> tuple[Settlement | None, int]:
        """``settlement`` after what the primary is owed (taken: kept again if this fails),
        and how many corrections come before its own."""
        owed = self._owed.take()
        if owed is None:
            return settlement, 0
        if settlement is None:
            return owed, len(owed[0])
        return (owed[0] + settlement[0], owed[1] + settlement[1]), len(owed[0])

    def _keep(self, settlement: Settlement) -> None:
        self._owed.add(settlement)
        if self._owed and (self._replay is None or self._replay.done()):
            self._replay = asyncio.get_running_loop().create_task(self._replaying())

    async def _replaying(self) -> None:
        """Send what the primary is owed, every ``retry_after`` seconds until it goes (an
        admission may carry it first)."""
        while self._owed:
            await asyncio.sleep(self._retry_after)
            if not self._owed or not self._primary_up():
                continue
            owed = self._owed.take()
            assert owed is not None
            try:
                await self.primary.settle(*owed)
            except StateUnavailableError as exc:
                self._failed(exc)
                self._owed.add(owed)
                continue
            self._back()

    def _back(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            log.info("shared counter store is back; limits are shared again")

    def _failed(self, exc: StateUnavailableError) -> None:
        if self._down_until is None:
            mode = "per-process limits" if self.fallback is not None else "refusing requests"
            log.warning("shared counter store failed (%s); %s", exc, mode)
        self._down_until = self._clock() + self._retry_after


class Owed:
    """Settlements kept for a store that could not take them, bounded.

    Corrections of one counter add up into one; a slot release is kept until its slot
    would have expired anyway (then it would free nothing: it is dropped)."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._adjustments: dict[str, Adjustment] = {}
        self._releases: list[tuple[Slots, float]] = []  # (release, when its slot expires)
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._adjustments) + len(self._releases)

    def add(self, settlement: Settlement) -> None:
        adjustments, release = settlement
        kept = self._adjustments
        dropped = 0
        for adjustment in adjustments:
            key = adjustment.check.key
            found = kept.get(key)
            if found is not None:
                kept[key] = Adjustment(adjustment.check, found.delta + adjustment.delta)
            elif len(self) < self._limit:
                kept[key] = adjustment
            else:
                dropped += 1
        now = self._clock()
        for slot in release:
            if len(self) < self._limit:
                self._releases.append((slot, now + slot.ttl))
            else:
                dropped += 1
        if dropped:
            if not self.dropped:
                log.warning(
                    "more than %d counters and slots wait for the shared store: "
                    "dropping their settlements",
                    self._limit,
                )
            self.dropped += dropped

    def take(self) -> Settlement | None:
        """Everything kept (slots that expired meanwhile left out), and forget it."""
        if not self:
            return None
        now = self._clock()
        adjustments = list(self._adjustments.values())
        release = [slot for slot, expiry in self._releases if expiry > now]
        self._adjustments = {}
        self._releases = []
        if not adjustments and not release:
            return None
        return adjustments, release


C = TypeVar("C", Rate, Quota, Slots, Rate | Quota, Check)


def _shared(check: C, share: int) -> C:
    """``check`` with its limit cut to one worker's share (at least 1)."""
    if share == 1:
        return check
    limit = max(1, math.ceil(check.limit / share))
    if isinstance(check, Rate):
        return Rate(check.key, limit, check.period, check.cost)
    if isinstance(check, Quota):
        return Quota(check.key, limit, check.cost, check.ttl, check.hard)
    return Slots(check.key, limit, check.ttl, check.member)

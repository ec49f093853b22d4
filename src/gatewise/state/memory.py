"""Counters in this process's memory: the embedded store, and the fallback when Redis is down.

Plain dicts on the event loop, no locks: ``admit`` never awaits between check
and charge, so no other request can slip in between. Entries expire lazily when
read, and a sweep every ``sweep_every`` seconds drops the ones nobody reads
again, so memory stays bounded by the keys used within their lifetimes.

This runs for every admitted call, so it is written flat: no helper call per
counter, no object per counter beyond its ``CheckState``.

Rates are GCRA (see ``state.base``) in exact integer arithmetic. With ``T =
period / limit`` and tolerance ``tau = period``, time is counted in units of
``1 / limit`` µs: then ``T`` is ``period_us`` units and ``tau`` is ``period_us *
limit`` units, both whole numbers, so no sum ever drifts and ``remaining`` is
exact. A rate key stores its TAT in those units with the ``limit`` that scales
it (a changed limit still reads it). The Redis script (``lua/admit.lua``)
reaches the same decisions with doubles (see its comments); both are tested
against the same exact rational reference.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from typing import Any

from gatewise.state.base import (
    Adjustment,
    Check,
    CheckState,
    Outcome,
    Quota,
    Rate,
    Settlement,
    Slots,
)

MICROS = 1_000_000


def micros(seconds: float) -> int:
    """Whole microseconds: every time and duration in the stores is counted in these."""
    return round(seconds * MICROS)


RateEntry = tuple[int, int, int]  # (TAT in 1/limit µs, that limit, expiry in µs)
QuotaEntry = tuple[int, int]  # (used, expiry in µs)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)  # the hot loops write this out in line


class MemoryCounterStore:
    """A ``CounterStore`` for one process; ``clock`` is injectable for tests."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, sweep_every: float = 30.0
    ) -> None:
        self._clock = clock
        self._sweep_every_us = micros(sweep_every)
        self._next_sweep_us = 0
        self._rates: dict[str, RateEntry] = {}
        self._quotas: dict[str, QuotaEntry] = {}
        self._slots: dict[str, list[int]] = {}  # key -> sorted expiries (µs), one per slot
        self._seen: dict[str, int] = {}  # once(): key -> expiry in µs

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def __len__(self) -> int:
        """Keys held (expired ones included until swept)."""
        return len(self._rates) + len(self._quotas) + len(self._slots) + len(self._seen)

    async def admit(self, checks: list[Check], settlement: Settlement | None = None) -> Outcome:
        settled = self.settle_now(*settlement) if settlement is not None else []
        outcome = self.admit_now(checks)
        outcome.settled = settled
        return outcome

    def admit_now(self, checks: list[Check], costs: list[int] | None = None) -> Outcome:
        """``admit`` without the coroutine: check and charge in one synchronous step.

        ``costs`` (one per check) replace the checks' own, so a caller can charge the same
        check objects on every call. Each check is charged as soon as it passes (so a key
        named twice sees its own first charge) and the charges are undone if a later
        check refuses (rare)."""
        now = self._now()
        rates, quotas, slots = self._rates, self._quotas, self._slots
        undo: list[tuple[dict[str, Any], str, Any]] = []
        states: list[CheckState] = []
        for index, check in enumerate(checks):
            key = check.key
            limit = check.limit
            if isinstance(check, Rate):
                period = round(check.period * MICROS)
                now_s = now * limit
                tat = now_s
                entry = rates.get(key)
                if entry is not None and entry[2] > now:
                    stored = entry[0]
                    if entry[1] != limit:  # stored at another limit: rescale, rounding up
                        stored = -(-stored * limit // entry[1])
                    if stored > now_s:
                        tat = stored
                tat += (check.cost if costs is None else costs[index]) * period
                spent = tat - now_s  # the TAT's lead over now, in 1/limit µs
                if spent > period * limit:
                    retry = -((period * limit - spent) // limit) / MICROS
                    return self._refused(checks, index, retry, now, undo)
                reset = -(-spent // limit)  # whole µs until the TAT
                undo.append((rates, key, entry))
                rates[key] = (tat, limit, now + reset + period)
                # remaining = limit - ceil(spent / period)
                states.append(CheckState(limit, limit + (-spent // period), reset / MICROS))
            elif isinstance(check, Quota):
                found = quotas.get(key)
                used = found[0] if found is not None and found[1] > now else 0
                used += check.cost if costs is None else costs[index]
                if check.hard and used > limit:
                    return self._refused(checks, index, 0.0, now, undo)
                undo.append((quotas, key, found))
                quotas[key] = (used, now + round(check.ttl * MICROS))
                states.append(CheckState(limit, limit - used if used < limit else 0, 0.0, used))
            else:
                taken = slots.get(key)
                if taken and taken[0] <= now:  # expired slots first
                    del taken[: bisect.bisect_right(taken, now)]
                if taken and len(taken) >= limit:
                    return self._refused(checks, index, 0.0, now, undo)
                expiry = now + round(check.ttl * MICROS)
                if not taken:
                    taken = slots[key] = [expiry]
                elif taken[-1] <= expiry:  # the usual case: one ttl per key
                    taken.append(expiry)
                else:
                    bisect.insort(taken, expiry)
                undo.append((self._slots, key, expiry))
                states.append(CheckState(limit, limit - len(taken), 0.0))
        return Outcome(True, None, 0.0, states)

    def _refused(
        self,
        checks: list[Check],
        index: int,
        retry: float,
        now: int,
        undo: list[tuple[dict[str, Any], str, Any]],
    ) -> Outcome:
        """Nothing is charged (the charges so far are undone, newest first); the states
        are every counter as it stands."""
        for table, key, before in reversed(undo):
            if table is self._slots:
                self._slots[key].remove(before)  # ``before`` is the slot's expiry
            elif before is None:
                del table[key]
            else:
                table[key] = before
        return Outcome(False, index, retry, [self._peek(check, now) for check in checks])

    def _peek(self, check: Check, now: int) -> CheckState:
        limit = check.limit
        if isinstance(check, Rate):
            period = round(check.period * MICROS)
            tat = self._tat(check.key, limit, now)
            spent = 0 if tat is None else max(0, tat - now * limit)
            remaining = max(0, limit - _ceil_div(spent, period))
            return CheckState(limit, remaining, _ceil_div(spent, limit) / MICROS)
        if isinstance(check, Quota):
            used = self._used(check.key, now)
            return CheckState(limit, max(0, limit - used), 0.0, used)
        taken = len(self._live_slots(check.key, now))
        return CheckState(limit, max(0, limit - taken), 0.0)

    async def settle(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        return self.settle_now(adjustments, release)

    def settle_now(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        """``settle`` without the coroutine (callers skip a task per call). Written flat,
        like ``admit_now``: the lookups with lazy expiry are in line."""
        now = self._now()
        rates, quotas = self._rates, self._quotas
        totals: list[int] = []
        for adjustment in adjustments:
            check, delta = adjustment.check, adjustment.delta
            key = check.key
            if isinstance(check, Rate):
                totals.append(0)
                limit = check.limit
                now_s = now * limit
                entry = rates.get(key)
                if entry is None or entry[2] <= now:  # no live TAT: the bucket is full
                    if delta <= 0:
                        continue  # nothing to give back
                    tat = now_s
                else:
                    tat = entry[0] if entry[1] == limit else -(-entry[0] * limit // entry[1])
                period = round(check.period * MICROS)
                # A refund cannot bank credit: the TAT stops at now.
                tat = max(max(tat, now_s) + delta * period, now_s)
                rates[key] = (tat, limit, now + -(-(tat - now_s) // limit) + period)
            else:
                found = quotas.get(key)
                if found is not None and found[1] <= now:  # expired: as if absent
                    del quotas[key]
                    found = None
                used = max(0, (0 if found is None else found[0]) + delta)
                if found is not None or used:
                    quotas[key] = (used, now + round(check.ttl * MICROS))
                totals.append(used)
        for slot in release:
            taken = self._slots.get(slot.key)
            if taken is None:
                continue
            if taken and taken[0] <= now:  # expired slots first
                del taken[: bisect.bisect_right(taken, now)]
            if taken:
                taken.pop()  # the newest: a leaked (oldest) slot still expires on time
            if not taken:
                del self._slots[slot.key]
        return totals

    async def once(self, key: str, ttl: float) -> bool:
        now = self._now()
        expiry = self._seen.get(key)
        if expiry is not None and expiry > now:
            return False
        self._seen[key] = now + micros(ttl)
        return True

    # -- reading with lazy expiry ------------------------------------------------------

    def _now(self) -> int:
        now = round(self._clock() * MICROS)
        if now >= self._next_sweep_us:
            self._sweep(now)
            self._next_sweep_us = now + self._sweep_every_us
        return now

    def _tat(self, key: str, limit: int, now: int) -> int | None:
        """A live rate key's TAT in 1/``limit`` µs (rounded up if stored at another limit)."""
        entry = self._rates.get(key)
        if entry is None:
            return None
        if entry[2] <= now:
            del self._rates[key]
            return None
        return entry[0] if entry[1] == limit else _ceil_div(entry[0] * limit, entry[1])

    def _used(self, key: str, now: int) -> int:
        entry = self._quotas.get(key)
        if entry is None:
            return 0
        if entry[1] <= now:
            del self._quotas[key]
            return 0
        return entry[0]

    def _live_slots(self, key: str, now: int) -> list[int]:
        taken = self._slots.get(key)
        if taken is None:
            return []
        expired = bisect.bisect_right(taken, now)
        if expired:
            del taken[:expired]
        return taken

    def _sweep(self, now: int) -> None:
        for key in [k for k, entry in self._rates.items() if entry[2] <= now]:
            del self._rates[key]
        for key in [k for k, (_, expiry) in self._quotas.items() if expiry <= now]:
            del self._quotas[key]
        for key in [k for k, expiry in self._seen.items() if expiry <= now]:
            del self._seen[key]
        for key in list(self._slots):
            if not self._live_slots(key, now):
                del self._slots[key]

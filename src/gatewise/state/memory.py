"""Counters in this process's memory: the embedded store, and the fallback when Redis is down.

Plain dicts on the event loop, no locks: ``admit`` never awaits between check
and charge, so no other request can slip in between. Entries expire lazily when
read, and a sweep every ``sweep_every`` seconds drops the ones nobody reads
again, so memory stays bounded by the keys used within their lifetimes.

The arithmetic is the same as the Redis script's (``lua/admit.lua``), so both
stores decide identically for the same clock readings; see ``Gcra`` for the
rate counter's exact integer form.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gatewise.state.base import (
    Adjustment,
    Check,
    CheckState,
    Outcome,
    Quota,
    Rate,
    Slots,
)

MICROS = 1_000_000


def micros(seconds: float) -> int:
    """Whole microseconds: every time and duration in the stores is counted in these."""
    return round(seconds * MICROS)


Stored = tuple[int, float]  # a rate key's value: (phase, TAT - phase), in µs


@dataclass(frozen=True, slots=True)
class Gcra:
    """The rate counter's arithmetic in whole emission intervals (ticks), so it is exact.

    GCRA with ``T = period / limit`` and tolerance ``tau = period``: ``tat =
    max(stored_tat, now)``, ``new_tat = tat + cost * T``, allowed iff ``new_tat
    - now <= tau``. ``T`` is rarely a whole number of microseconds, and summing
    it as a float drifts; but the TAT only ever moves by whole ticks from the
    moment it was last reset to ``now`` (its phase). So a key stores its phase
    (integer µs) and its TAT as ticks after the phase, and every comparison is
    between integers: ``new_tat - limit <= floor((now - phase) / T)``. A burst is
    exactly ``limit``, refills come exactly ``T`` apart, ``remaining`` is exact.
    The offset is stored in µs (``ticks * T``) so a changed limit still reads it.
    """

    limit: int
    period_us: int
    interval: float = field(init=False)  # period_us / limit, computed once

    def __post_init__(self) -> None:
        object.__setattr__(self, "interval", self.period_us / self.limit)

    def position(self, stored: Stored | None, now_us: int) -> tuple[int, int, int]:
        """(phase, TAT in ticks, now in ticks): a TAT in the past restarts at ``now``."""
        if stored is not None:
            phase, offset = stored
            now_t = math.floor((now_us - phase) / self.interval)
            tat = math.floor(offset / self.interval + 0.5)
            if tat > now_t:
                return phase, tat, now_t
        return now_us, 0, 0

    def stored(self, phase: int, tat: int) -> Stored:
        return phase, tat * self.interval

    def state(self, phase: int, tat: int, now_t: int, now_us: int) -> CheckState:
        reset_us = max(0, math.ceil(phase + tat * self.interval - now_us))
        return CheckState(self.limit, max(0, self.limit - (tat - now_t)), reset_us / MICROS)

    def retry_after(self, phase: int, tat: int, now_us: int) -> float:
        """Seconds until ``tat - now <= tau``: when ``tat - limit`` ticks have passed."""
        return max(0, math.ceil(phase + (tat - self.limit) * self.interval - now_us)) / MICROS

    def expiry_us(self, phase: int, tat: int, now_us: int) -> int:
        """When the key may go: once its TAT has passed, plus a period."""
        return max(now_us, math.ceil(phase + tat * self.interval)) + self.period_us


_GCRAS: dict[tuple[int, float], Gcra] = {}


def gcra(rate: Rate) -> Gcra:
    """The arithmetic of a rate, shared by every counter with its limit and period (asked
    for on every check, so remembered)."""
    found = _GCRAS.get((rate.limit, rate.period))
    if found is None:
        if len(_GCRAS) >= 4096:
            _GCRAS.clear()
        found = _GCRAS[(rate.limit, rate.period)] = Gcra(rate.limit, micros(rate.period))
    return found


class MemoryCounterStore:
    """A ``CounterStore`` for one process; ``clock`` is injectable for tests."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, sweep_every: float = 30.0
    ) -> None:
        self._clock = clock
        self._sweep_every_us = micros(sweep_every)
        self._next_sweep_us = 0
        self._rates: dict[str, tuple[int, float, int]] = {}  # key -> (*Stored, expiry in µs)
        self._quotas: dict[str, tuple[int, int]] = {}  # key -> (used, expiry in µs)
        self._slots: dict[str, list[int]] = {}  # key -> sorted expiries (µs), one per slot
        self._seen: dict[str, int] = {}  # once(): key -> expiry in µs

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def __len__(self) -> int:
        """Keys held (expired ones included until swept)."""
        return len(self._rates) + len(self._quotas) + len(self._slots) + len(self._seen)

    async def admit(self, checks: list[Check]) -> Outcome:
        return self.admit_now(checks)

    def admit_now(self, checks: list[Check]) -> Outcome:
        """``admit`` without the coroutine: check and charge in one synchronous step."""
        now_us = self._now()
        rates: dict[str, tuple[int, float, int]] = {}  # staged: a key named twice sees the first
        quotas: dict[str, int] = {}
        slots: dict[str, list[int]] = {}
        states: list[CheckState] = []
        for index, check in enumerate(checks):
            if isinstance(check, Rate):
                g = gcra(check)
                staged = rates.get(check.key)
                stored = staged[:2] if staged else self._rate(check.key, now_us)
                phase, tat, now_t = g.position(stored, now_us)
                tat += check.cost
                if tat - now_t > check.limit:
                    retry = g.retry_after(phase, tat, now_us)
                    return self._refused(checks, index, retry, now_us)
                rates[check.key] = (*g.stored(phase, tat), g.expiry_us(phase, tat, now_us))
                states.append(g.state(phase, tat, now_t, now_us))
            elif isinstance(check, Quota):
                used = quotas.get(check.key)
                used = (self._used(check.key, now_us) if used is None else used) + check.cost
                if check.hard and used > check.limit:
                    return self._refused(checks, index, 0.0, now_us)
                quotas[check.key] = used
                states.append(CheckState(check.limit, max(0, check.limit - used), 0.0, used))
            else:
                taken = slots.get(check.key)
                taken = self._live_slots(check.key, now_us) if taken is None else taken
                if len(taken) >= check.limit:
                    return self._refused(checks, index, 0.0, now_us)
                taken = [*taken]
                bisect.insort(taken, now_us + micros(check.ttl))
                slots[check.key] = taken
                states.append(CheckState(check.limit, check.limit - len(taken), 0.0))
        self._commit(checks, rates, quotas, slots, now_us)
        return Outcome(True, None, 0.0, states)

    def _commit(
        self,
        checks: list[Check],
        rates: dict[str, tuple[int, float, int]],
        quotas: dict[str, int],
        slots: dict[str, list[int]],
        now_us: int,
    ) -> None:
        self._rates.update(rates)
        for check in checks:
            if isinstance(check, Quota):
                self._quotas[check.key] = (quotas[check.key], now_us + micros(check.ttl))
        self._slots.update(slots)

    def _refused(self, checks: list[Check], index: int, retry: float, now_us: int) -> Outcome:
        """Nothing is charged; the states are every counter as it stands."""
        return Outcome(False, index, retry, [self._peek(check, now_us) for check in checks])

    def _peek(self, check: Check, now_us: int) -> CheckState:
        if isinstance(check, Rate):
            g = gcra(check)
            phase, tat, now_t = g.position(self._rate(check.key, now_us), now_us)
            return g.state(phase, tat, now_t, now_us)
        if isinstance(check, Quota):
            used = self._used(check.key, now_us)
            return CheckState(check.limit, max(0, check.limit - used), 0.0, used)
        taken = len(self._live_slots(check.key, now_us))
        return CheckState(check.limit, max(0, check.limit - taken), 0.0)

    async def settle(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        return self.settle_now(adjustments, release)

    def settle_now(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        """``settle`` without the coroutine (callers skip a task per call)."""
        now_us = self._now()
        totals: list[int] = []
        for adjustment in adjustments:
            check, delta = adjustment.check, adjustment.delta
            if isinstance(check, Rate):
                totals.append(0)
                stored = self._rate(check.key, now_us)
                if stored is None and delta <= 0:
                    continue
                g = gcra(check)
                phase, tat, now_t = g.position(stored, now_us)
                tat += delta
                if tat <= now_t:  # a refund cannot bank credit: the TAT stops at now
                    phase, tat = now_us, 0
                expiry = g.expiry_us(phase, tat, now_us)
                self._rates[check.key] = (*g.stored(phase, tat), expiry)
            else:
                used = self._used(check.key, now_us)  # drops an expired entry first
                exists = check.key in self._quotas
                used = max(0, used + delta)
                if exists or used:
                    self._quotas[check.key] = (used, now_us + micros(check.ttl))
                totals.append(used)
        for slot in release:
            taken = self._live_slots(slot.key, now_us)
            if taken:
                taken.pop()  # the newest: a leaked (oldest) slot still expires on time
            if not taken:
                self._slots.pop(slot.key, None)
        return totals

    async def once(self, key: str, ttl: float) -> bool:
        now_us = self._now()
        expiry = self._seen.get(key)
        if expiry is not None and expiry > now_us:
            return False
        self._seen[key] = now_us + micros(ttl)
        return True

    # -- reading with lazy expiry ------------------------------------------------------

    def _now(self) -> int:
        now_us = micros(self._clock())
        if now_us >= self._next_sweep_us:
            self._sweep(now_us)
            self._next_sweep_us = now_us + self._sweep_every_us
        return now_us

    def _rate(self, key: str, now_us: int) -> Stored | None:
        entry = self._rates.get(key)
        if entry is None:
            return None
        if entry[2] <= now_us:
            del self._rates[key]
            return None
        return entry[0], entry[1]

    def _used(self, key: str, now_us: int) -> int:
        entry = self._quotas.get(key)
        if entry is None:
            return 0
        if entry[1] <= now_us:
            del self._quotas[key]
            return 0
        return entry[0]

    def _live_slots(self, key: str, now_us: int) -> list[int]:
        taken = self._slots.get(key)
        if taken is None:
            return []
        expired = bisect.bisect_right(taken, now_us)
        if expired:
            del taken[:expired]
        return taken

    def _sweep(self, now_us: int) -> None:
        for key in [k for k, (_, _, expiry) in self._rates.items() if expiry <= now_us]:
            del self._rates[key]
        for key in [k for k, (_, expiry) in self._quotas.items() if expiry <= now_us]:
            del self._quotas[key]
        for key in [k for k, expiry in self._seen.items() if expiry <= now_us]:
            del self._seen[key]
        for key in list(self._slots):
            if not self._live_slots(key, now_us):
                del self._slots[key]

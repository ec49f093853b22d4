"""The counter-store interface: what limits and budgets ask of their state, in one call.

A request is admitted by one ``admit`` call that checks every applicable
counter and, only if all of them pass, charges them all (all or nothing). In
Redis that is one Lua script, one round trip, with Redis's clock; in memory it
is plain code on the event loop. After the call, ``settle`` corrects the
charges with what really happened (tokens and cost known only then) and frees
concurrency slots.

Three kinds of counter:
- ``Rate``: GCRA (the generic cell rate algorithm). ``limit`` units per
  ``period`` seconds, a burst of up to ``limit`` at once, refilled smoothly.
  One stored value per key (the theoretical arrival time). Used for requests
  and tokens per second/minute/hour/day and for rolling-window budgets.
- ``Quota``: a plain sum that resets when its key changes (the caller puts the
  period in the key, e.g. ``...:2026-11`` for a calendar month in the
  configured time zone) and expires ``ttl`` seconds later. Used for calendar
  budgets. A soft quota (``hard=False``) is charged but never refuses.
- ``Slots``: concurrent requests; taken by ``admit``, given back by ``settle``,
  expiring after ``ttl`` seconds (a little more than the longest a call may run) so
  a crashed worker cannot leak them for long. A release names the slot it gives
  back (``member``, from the admission's ``Outcome.token``) where the store keeps
  members (Redis): releasing a slot that is gone already (it expired, or the
  server restarted empty) then frees nobody else's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# The records below are built for every call (a frozen dataclass costs four times as much to
# build as a plain one, ~0.7 µs against ~0.2 µs): treat them as immutable all the same.


@dataclass(slots=True)
class Rate:
    key: str
    limit: int  # units per period (>= 1)
    period: float  # seconds
    cost: int  # units this request takes now (may exceed limit: then it is refused)


@dataclass(slots=True)
class Quota:
    key: str
    limit: int  # units per period (micro-USD or tokens)
    cost: int  # units reserved now (the estimate)
    ttl: float  # seconds the key lives after its last change
    hard: bool = True  # False: counted, never refused


@dataclass(slots=True)
class Slots:
    key: str
    limit: int
    ttl: float = 600.0  # seconds a slot lives unless given back
    #: In a release: the slot given back, ``slot_member(Outcome.token, index)``; empty:
    #: the newest slot of ``key`` (the memory store, which keeps no members, always).
    member: str = ""


def slot_member(token: str, index: int) -> str:
    """The member of the slot taken by the check at ``index`` of the admission ``token``."""
    return f"{token}:{index + 1}"


Check = Rate | Quota | Slots


@dataclass(slots=True)
class CheckState:
    """One counter after the decision, for response headers and alerts."""

    limit: int
    remaining: int  # units still available now (>= 0)
    reset_after: float  # seconds until the counter is full again (Rate) / 0 for others
    used: int = 0  # Quota: units used after this charge (for threshold alerts)


@dataclass(slots=True)
class Outcome:
    allowed: bool
    #: Index (into the checks passed to ``admit``) of the first counter that refused, else None.
    refused: int | None
    #: Seconds until a retry could pass the refusing counter (0 when allowed; for a hard
    #: quota: seconds until ``ttl`` expiry is unknown, so 0 and callers say "quota exhausted").
    retry_after: float
    states: list[CheckState] = field(default_factory=list)  # one per check, same order
    #: The new used totals of the settlement the call carried (see ``CounterStore.admit``);
    #: empty when the store deferred that settlement.
    settled: list[int] = field(default_factory=list)
    #: Names this admission's slots (``slot_member``) in a store that keeps members.
    token: str = ""
    #: Decided by a stand-in store in this process (``ResilientStore`` while the shared one
    #: is down): settle the call there too (``ResilientStore.settle_fallback``).
    fallback: bool = False


@dataclass(slots=True)
class Adjustment:
    """A correction after the call: ``delta`` units (negative gives back) on a Rate or Quota."""

    check: Rate | Quota
    delta: int


#: Corrections and slot releases of finished calls, applied together.
Settlement = tuple[list[Adjustment], list[Slots]]


class StateUnavailableError(Exception):
    """The shared store could not be reached or answered in time."""


class CounterStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def admit(self, checks: list[Check], settlement: Settlement | None = None) -> Outcome:
        """Check every counter; charge them all only if all pass. Raises StateUnavailableError.

        ``settlement`` (finished calls' corrections and slot releases) is applied first, in
        the same round trip, whatever the decision; ``Outcome.settled`` has its totals."""
        ...

    async def settle(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        """Apply corrections and free slots; returns each Quota adjustment's new used total
        (0 for Rate adjustments), in order. Raises StateUnavailableError, or (a store that
        keeps failed settlements to replay them, ``ResilientStore``) returns [] when the
        settlement is deferred."""
        ...

    async def once(self, key: str, ttl: float) -> bool:
        """True the first time ``key`` is seen within ``ttl`` seconds (alert de-duplication)."""
        ...

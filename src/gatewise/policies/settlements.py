"""Settling finished calls: corrections of their estimates, and their freed slots.

For a store that settles over the network (Redis; ``TrafficControl`` settles a
memory store in line). Each settlement is a network round trip: sent per call it
doubles the store's work and competes with the next call's admission. So
corrections wait here and go with this process's next admission (``take``; the
admission script applies them first, in the same round trip), or on their own
within ``window`` (20 ms) when no admission comes.

A freed concurrency slot cannot wait: the caller may call again as soon as its
reply is complete, through another replica, which sees the slot free only once
it reached the store. So a call that held a slot is settled within the loop
iteration it ended in (``send``): by an admission of that iteration, which
carries it, or else by one settlement of its own, shared by every slot freed in
that iteration (with whatever corrections wait); its reply waits for that round
trip before its last bytes go out. Calls that hold no slot pay nothing for it.
``close`` sends what is still waiting, so a clean stop loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gatewise.state.base import Adjustment, CounterStore, Settlement, Slots, StateUnavailableError

log = logging.getLogger("gatewise.limits")

#: Called per call once settled, with that call's adjustments and their new totals.
OnSettled = Callable[[Any, list[Adjustment], list[int]], None]

#: The calls of one settlement: (call, its adjustments, its slots), in order.
Batch = list[tuple[Any, list[Adjustment], list[Slots]]]


@dataclass(slots=True)
class Taken:
    """What waited, taken to the store (by an admission or a flush): report it with
    ``SettlementBatcher.settled`` once the store answered or failed."""

    batch: Batch
    settlement: Settlement
    #: Replies waiting for slots of this batch to reach the store (None: no slot).
    released: asyncio.Future[None] | None


class SettlementBatcher:
    def __init__(
        self,
        store: CounterStore,
        on_settled: OnSettled | None,
        *,
        window: float = 0.02,
    ) -> None:
        self._store = store
        self._on_settled = on_settled
        self._window = window
        self._waiting: Batch = []
        #: Resolved once the slots waiting in ``_waiting`` reached the store (or failed to).
        self._released: asyncio.Future[None] | None = None
        self._timer: asyncio.Handle | None = None  # sends what waits (at the latest)
        self._flushes: set[asyncio.Task[None]] = set()

    def add(self, call: Any, adjustments: list[Adjustment]) -> None:
        """Corrections that may wait for the next admission (within ``window``)."""
        self._waiting.append((call, adjustments, []))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._window, self._flush_soon)

    def send(
        self, call: Any, adjustments: list[Adjustment], release: list[Slots]
    ) -> asyncio.Future[None]:
        """Settle a call that held slots within this loop iteration; the future (shared by
        the slots freed in this iteration) is done once the store has them, or failed to
        take them: it never raises."""
        self._waiting.append((call, adjustments, release))
        released = self._released
        if released is None:
            loop = asyncio.get_running_loop()
            released = self._released = loop.create_future()
            if self._timer is not None:
                self._timer.cancel()
            # At the end of this iteration, unless an admission of this iteration carries it.
            self._timer = loop.call_soon(self._flush_soon)
        return released

    def take(self) -> Taken | None:
        """What waits, for an admission to carry (then ``settled`` with its totals)."""
        batch = self._waiting
        if not batch:
            return None
        self._waiting = []
        released, self._released = self._released, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        adjustments = [a for _, calls, _ in batch for a in calls]
        release = [slot for _, _, slots in batch for slot in slots]
        return Taken(batch, (adjustments, release), released)

    def settled(self, taken: Taken, totals: list[int] | None) -> None:
        """The store took ``taken`` (``totals``: its corrections' new totals, [] when it
        deferred them) or failed (None): tell each call its totals (for alerts) and let the
        replies waiting for its slots go on."""
        try:
            batch = taken.batch
            if self._on_settled is None or totals is None:
                return
            if len(totals) < sum(len(calls) for _, calls, _ in batch):
                return  # deferred: no totals yet
            start = 0
            for call, calls, _ in batch:
                self._on_settled(call, calls, totals[start : start + len(calls)])
                start += len(calls)
        finally:
            released = taken.released
            if released is not None and not released.done():
                released.set_result(None)

    def _flush_soon(self) -> None:
        self._timer = None
        if self._waiting:
            task = asyncio.get_running_loop().create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        taken = self.take()
        if taken is None:
            return
        totals: list[int] | None = None
        try:
            totals = await self._store.settle(*taken.settlement)
        except StateUnavailableError as exc:
            log.warning("could not settle %d calls' limits: %s", len(taken.batch), exc)
        except Exception:  # replies wait for this: it must not fail
            log.exception("settling %d calls' limits failed", len(taken.batch))
        finally:
            try:
                self.settled(taken, totals)
            except Exception:
                log.exception("reporting %d calls' settlement failed", len(taken.batch))

    async def close(self) -> None:
        """Send everything still waiting (a clean stop loses no settlement)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushes:
            await asyncio.wait(set(self._flushes), timeout=5)
        await self._flush()

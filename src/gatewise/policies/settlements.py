"""Settling finished calls: corrections of their estimates, and their freed slots.

For a store that settles over the network (Redis; ``TrafficControl`` settles a
memory store in line). Each settlement is a network round trip: sent per call it
doubles the store's work and competes with the next call's admission. So
corrections wait here and go with this process's next admission (``take``; the
admission script applies them first, in the same round trip), or on their own
within ``window`` (20 ms) when no admission comes.

A freed concurrency slot cannot wait: the caller may call again as soon as its
reply is complete, through another replica, which sees the slot free only once
it reached the store. So a call that held a slot is settled at once (``send``,
with whatever corrections wait), and its reply waits for that round trip before
its last bytes go out; calls that hold no slot pay nothing for it. ``close``
sends what is still waiting, so a clean stop loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gatewise.state.base import Adjustment, CounterStore, Settlement, Slots, StateUnavailableError

log = logging.getLogger("gatewise.limits")

#: Called per call once settled, with that call's adjustments and their new totals.
OnSettled = Callable[[Any, list[Adjustment], list[int]], None]

#: The calls of one settlement: (call, its adjustments, its slots), in order.
Batch = list[tuple[Any, list[Adjustment], list[Slots]]]


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
        self._due: float | None = None  # loop time by which the waiting batch must go
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def add(self, call: Any, adjustments: list[Adjustment]) -> None:
        """Corrections that may wait for the next admission (within ``window``)."""
        self._waiting.append((call, adjustments, []))
        if self._due is None:
            loop = asyncio.get_running_loop()
            self._due = loop.time() + self._window
            self._timer = loop.call_at(self._due, self._flush_soon)

    def send(
        self, call: Any, adjustments: list[Adjustment], release: list[Slots]
    ) -> asyncio.Task[None]:
        """Settle a call that held slots now (the corrections waiting go along); the task
        ends once the store has it (or failed: it never raises)."""
        self._waiting.append((call, adjustments, release))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._due = None
        task = asyncio.get_running_loop().create_task(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)
        return task

    def take(self) -> tuple[Batch, Settlement] | None:
        """What waits, for an admission to carry (then ``settled`` with its totals)."""
        batch = self._waiting
        if not batch:
            return None
        self._waiting = []
        adjustments = [a for _, calls, _ in batch for a in calls]
        release = [slot for _, _, slots in batch for slot in slots]
        return batch, (adjustments, release)

    def settled(self, batch: Batch, totals: list[int]) -> None:
        """Tell each call of ``batch`` its adjustments' new totals (for alerts); none when
        the store deferred the settlement (no totals yet)."""
        if self._on_settled is None or len(totals) < sum(len(calls) for _, calls, _ in batch):
            return
        start = 0
        for call, calls, _ in batch:
            self._on_settled(call, calls, totals[start : start + len(calls)])
            start += len(calls)

    def _flush_soon(self) -> None:
        self._timer = self._due = None
        if self._waiting:
            task = asyncio.get_running_loop().create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        taken = self.take()
        if taken is None:
            return
        batch, (adjustments, release) = taken
        try:
            totals = await self._store.settle(adjustments, release)
            self.settled(batch, totals)
        except StateUnavailableError as exc:
            log.warning("could not settle %d calls' limits: %s", len(batch), exc)
        except Exception:  # a reply may wait for this: it must not fail
            log.exception("settling %d calls' limits failed", len(batch))

    async def close(self) -> None:
        """Send everything still waiting (a clean stop loses no settlement)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._due = None
        if self._flushes:
            await asyncio.wait(set(self._flushes), timeout=5)
        await self._flush()

"""Settling finished calls: corrections of their estimates, and their freed slots.

For a store that settles over the network (Redis; ``TrafficControl`` settles a
memory store in line). Each settlement is a network round trip: sent per call it
doubles the store's work and competes with the next call's admission. So corrections of
calls that end within ``window`` seconds (20 ms) go together in one ``settle``
call. A freed concurrency slot is sent at once (with whatever waits), since
the caller may call again as soon as it has its answer. ``close`` sends what
is still waiting, so a clean stop loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gatewise.state.base import Adjustment, CounterStore, Slots, StateUnavailableError

log = logging.getLogger("gatewise.limits")

#: Called per call once settled, with that call's adjustments and their new totals.
OnSettled = Callable[[Any, list[Adjustment], list[int]], None]


class SettlementBatcher:
    def __init__(
        self, store: CounterStore, on_settled: OnSettled | None, *, window: float = 0.02
    ) -> None:
        self._store = store
        self._on_settled = on_settled
        self._window = window
        self._waiting: list[tuple[Any, list[Adjustment], list[Slots]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._now: set[asyncio.Task[None]] = set()  # flushes that did not wait for the window

    def add(self, call: Any, adjustments: list[Adjustment], release: list[Slots]) -> None:
        self._waiting.append((call, adjustments, release))
        loop = asyncio.get_running_loop()
        if release:
            task = loop.create_task(self._flush())
            self._now.add(task)
            task.add_done_callback(self._now.discard)
        elif self._flusher is None:
            self._flusher = loop.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._window)
        self._flusher = None
        await self._flush()

    async def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        if not batch:
            return
        adjustments = [a for _, calls, _ in batch for a in calls]
        release = [slot for _, _, slots in batch for slot in slots]
        try:
            totals = await self._store.settle(adjustments, release)
        except StateUnavailableError as exc:
            log.warning("could not settle %d calls' limits: %s", len(batch), exc)
            return
        if self._on_settled is None:
            return
        start = 0
        for call, calls, _ in batch:
            self._on_settled(call, calls, totals[start : start + len(calls)])
            start += len(calls)

    async def close(self) -> None:
        """Send everything still waiting (a clean stop loses no settlement)."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if self._now:
            await asyncio.wait(set(self._now), timeout=5)
        await self._flush()

"""Settling calls against a shared store in small batches: one round trip for many calls.

Each finished call corrects its estimates and frees its slots. Against Redis
that is a network round trip; sent per call it doubles the store's work and
competes with the next call's admission. Calls that end within ``window``
seconds (20 ms) are settled together in one ``settle`` call instead, at the
cost of freeing their slots and refunds up to ``window`` later. ``close``
sends what is still waiting, so a clean stop loses nothing.
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
        self._running: set[asyncio.Task[None]] = set()

    def add(self, call: Any, adjustments: list[Adjustment], release: list[Slots]) -> None:
        self._waiting.append((call, adjustments, release))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

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
        await self._flush()

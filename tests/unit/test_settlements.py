"""SettlementBatcher: corrections ride with the next admission, else go on their own within
their window; a freed slot goes at once, and its call can wait until the store has it.

The batcher schedules with the event loop, so these tests run on a virtual clock: each
settlement is seen to go at exactly the loop time its window says, whatever the load.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gatewise.policies.settlements import SettlementBatcher
from gatewise.state.base import Adjustment, Quota, Slots
from tests.virtual_clock import on_virtual_clock

BUDGET = Quota("usd", limit=1000, cost=0, ttl=60.0)
WINDOW = 0.2  # how long corrections alone may wait for an admission to ride with
SLOT = Slots("conc", limit=1)


class RecordingStore:
    """Records every settle call; its totals are each correction's delta."""

    def __init__(self) -> None:
        self.settles: list[tuple[list[Adjustment], list[Slots]]] = []
        self.times: list[float] = []  # the loop's time of each settle call
        self.defer = False  # as ResilientStore while Redis is down: kept, no totals

    async def settle(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        self.settles.append((adjustments, release))
        self.times.append(asyncio.get_running_loop().time())
        return [] if self.defer else [adjustment.delta for adjustment in adjustments]


def batcher(store: RecordingStore, seen: list[tuple[Any, list[int]]]) -> SettlementBatcher:
    return SettlementBatcher(
        store,  # type: ignore[arg-type]
        lambda call, _adjustments, totals: seen.append((call, totals)),
        window=WINDOW,
    )


def now() -> float:
    return asyncio.get_running_loop().time()


@on_virtual_clock
async def test_freed_slots_go_within_the_loop_iteration_with_what_waits() -> None:
    store, seen = RecordingStore(), []
    settlements = batcher(store, seen)
    start = now()
    settlements.add("a", [Adjustment(BUDGET, -5)])
    sent = settlements.send("b", [], [SLOT])  # takes the waiting corrections along
    assert settlements.send("c", [], [SLOT]) is sent  # slots freed together go together
    await sent  # what the calls' replies wait for: the store has them now
    assert store.settles == [([Adjustment(BUDGET, -5)], [SLOT, SLOT])]
    assert seen == [("a", [-5]), ("b", []), ("c", [])]
    assert store.times == [start]  # at once, not when a window ends
    await asyncio.sleep(WINDOW * 2)
    assert len(store.settles) == 1  # the corrections' timer found nothing left


@on_virtual_clock
async def test_an_admission_of_the_same_iteration_carries_freed_slots() -> None:
    store, seen = RecordingStore(), []
    settlements = batcher(store, seen)
    sent = settlements.send("a", [Adjustment(BUDGET, 1)], [SLOT])
    taken = settlements.take()  # an admission takes it before the iteration ends
    assert taken is not None and taken.settlement == ([Adjustment(BUDGET, 1)], [SLOT])
    await asyncio.sleep(0.01)
    assert store.settles == [] and not sent.done()  # it waits for the admission's answer
    settlements.settled(taken, [7])
    assert sent.done() and seen == [("a", [7])]
    failed = settlements.send("b", [], [SLOT])
    taken = settlements.take()
    assert taken is not None
    settlements.settled(taken, None)  # the admission failed: the reply goes on all the same
    assert failed.done() and store.settles == []


@on_virtual_clock
async def test_a_deferred_settlement_reports_no_totals() -> None:
    """A store that keeps a settlement for later (Redis down) returns no totals: no call
    is told wrong ones."""
    store, seen = RecordingStore(), []
    store.defer = True
    settlements = batcher(store, seen)
    await settlements.send("a", [Adjustment(BUDGET, 2)], [SLOT])
    assert len(store.settles) == 1 and seen == []


@on_virtual_clock
async def test_corrections_alone_wait_for_the_longer_window() -> None:
    store, seen = RecordingStore(), []
    settlements = batcher(store, seen)
    start = now()
    settlements.add("a", [Adjustment(BUDGET, 3)])
    await asyncio.sleep(WINDOW * 0.9)
    assert store.settles == []
    await asyncio.sleep(WINDOW)
    assert store.settles == [([Adjustment(BUDGET, 3)], [])] and seen == [("a", [3])]
    assert store.times == [pytest.approx(start + WINDOW)]


@on_virtual_clock
async def test_an_admission_takes_what_waits_and_nothing_is_sent_twice() -> None:
    store, seen = RecordingStore(), []
    settlements = batcher(store, seen)
    settlements.add("a", [Adjustment(BUDGET, -1), Adjustment(BUDGET, 2)])
    settlements.add("b", [Adjustment(BUDGET, -7)])
    taken = settlements.take()
    assert taken is not None
    adjustments, release = taken.settlement
    assert [a.delta for a in adjustments] == [-1, 2, -7] and release == []
    assert settlements.take() is None
    settlements.settled(taken, [10, 12, 5])  # the totals the admission reported
    assert seen == [("a", [10, 12]), ("b", [5])]
    await asyncio.sleep(WINDOW * 2)
    assert store.settles == []  # the timer found nothing left to send


@on_virtual_clock
async def test_close_sends_what_still_waits() -> None:
    store, seen = RecordingStore(), []
    settlements = batcher(store, seen)
    start = now()
    settlements.add("a", [Adjustment(BUDGET, 4)])
    await settlements.close()
    assert store.settles == [([Adjustment(BUDGET, 4)], [])] and seen == [("a", [4])]
    assert store.times == [start]  # at once, not when the window ends
    await asyncio.sleep(WINDOW * 2)
    assert len(store.settles) == 1  # and the window's timer is gone

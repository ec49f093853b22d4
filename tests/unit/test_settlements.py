"""SettlementBatcher: settlements ride with the next admission, else go on their own soon
(a freed slot within its short window, corrections alone within the longer one)."""

from __future__ import annotations

import asyncio
from typing import Any

from gatewise.policies.settlements import SettlementBatcher
from gatewise.state.base import Adjustment, Quota, Slots

BUDGET = Quota("usd", limit=1000, cost=0, ttl=60.0)
SLOT = Slots("conc", limit=1)


class RecordingStore:
    """Records every settle call; its totals are each correction's delta."""

    def __init__(self) -> None:
        self.settles: list[tuple[list[Adjustment], list[Slots]]] = []

    async def settle(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        self.settles.append((adjustments, release))
        return [adjustment.delta for adjustment in adjustments]


def batcher(store: RecordingStore, seen: list[tuple[Any, list[int]]]) -> SettlementBatcher:
    return SettlementBatcher(
        store,  # type: ignore[arg-type]
        lambda call, _adjustments, totals: seen.append((call, totals)),
        window=0.2,
        release_window=0.02,
    )


async def test_a_freed_slot_goes_within_its_short_window() -> None:
    store, seen = RecordingStore(), []
    settlements = batcher(store, seen)
    settlements.add("a", [Adjustment(BUDGET, -5)], [])
    settlements.add("b", [], [SLOT])  # brings the whole batch forward
    await asyncio.sleep(0.08)
    assert store.settles == [([Adjustment(BUDGET, -5)], [SLOT])]
    assert seen == [("a", [-5]), ("b", [])]


async def test_corrections_alone_wait_for_the_longer_window() -> None:
    store, seen = RecordingStore(), []
    settlements = batcher(store, seen)
    settlements.add("a", [Adjustment(BUDGET, 3)], [])
    await asyncio.sleep(0.08)
    assert store.settles == []
    await asyncio.sleep(0.25)
    assert store.settles == [([Adjustment(BUDGET, 3)], [])] and seen == [("a", [3])]


async def test_an_admission_takes_what_waits_and_nothing_is_sent_twice() -> None:
    store, seen = RecordingStore(), []
    settlements = batcher(store, seen)
    settlements.add("a", [Adjustment(BUDGET, -1), Adjustment(BUDGET, 2)], [SLOT])
    settlements.add("b", [Adjustment(BUDGET, -7)], [])
    taken = settlements.take()
    assert taken is not None
    batch, (adjustments, release) = taken
    assert [a.delta for a in adjustments] == [-1, 2, -7] and release == [SLOT]
    assert settlements.take() is None
    settlements.settled(batch, [10, 12, 5])  # the totals the admission reported
    assert seen == [("a", [10, 12]), ("b", [5])]
    await asyncio.sleep(0.08)
    assert store.settles == []  # the timer found nothing left to send


async def test_close_sends_what_still_waits() -> None:
    store, seen = RecordingStore(), []
    settlements = batcher(store, seen)
    settlements.add("a", [Adjustment(BUDGET, 4)], [])
    await settlements.close()
    assert store.settles == [([Adjustment(BUDGET, 4)], [])] and seen == [("a", [4])]

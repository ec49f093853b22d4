"""Budget thresholds: which are reached, each returned once per period, and the event body."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from gatewise.alerts.thresholds import ThresholdTracker, budget_event, format_usd, reached

USD = 1_000_000


class FakeOnce:
    """SET-NX semantics in memory, shared by several trackers (= replicas)."""

    def __init__(self) -> None:
        self.keys: dict[str, float] = {}
        self.calls: list[str] = []
        self.broken = False

    async def __call__(self, key: str, ttl: float) -> bool:
        self.calls.append(key)
        await asyncio.sleep(0)  # let concurrent callers interleave, as over a network
        if self.broken:
            raise ConnectionError("store down")
        if key in self.keys:
            return False
        self.keys[key] = ttl
        return True


def test_reached_is_exact_integer_arithmetic() -> None:
    assert reached(49_999_999, 100 * USD, [50, 80, 100]) == []
    assert reached(50 * USD, 100 * USD, [50, 80, 100]) == [50]
    assert reached(100 * USD, 100 * USD, [100, 50, 80]) == [50, 80, 100]
    # 1/3 of a limit is not 33 % reached until used*100 >= 33*limit.
    assert reached(32, 100, [33]) == []
    assert reached(33, 100, [33]) == [33]
    assert reached(10, 0, [50]) == []  # no limit: nothing to announce


async def test_each_threshold_once_per_period() -> None:
    once = FakeOnce()
    tracker = ThresholdTracker(once)
    args = ("tenant:acme:usd", "2026-11")
    assert await tracker.crossed(*args, 40 * USD, 100 * USD, [50, 80, 100], 3600) == []
    assert await tracker.crossed(*args, 55 * USD, 100 * USD, [50, 80, 100], 3600) == [50]
    assert await tracker.crossed(*args, 60 * USD, 100 * USD, [50, 80, 100], 3600) == []
    # A jump past two thresholds returns both, ascending.
    assert await tracker.crossed(*args, 101 * USD, 100 * USD, [100, 50, 80], 3600) == [80, 100]
    assert await tracker.crossed(*args, 120 * USD, 100 * USD, [50, 80, 100], 3600) == []
    # A new period starts over.
    assert await tracker.crossed("tenant:acme:usd", "2026-12", 51, 100, [50], 3600) == [50]
    assert "alert:tenant:acme:usd:2026-11:80" in once.keys


async def test_claimed_thresholds_are_not_asked_again() -> None:
    """After a threshold is claimed, further requests cost no store round trip."""
    once = FakeOnce()
    tracker = ThresholdTracker(once)
    await tracker.crossed("k", "p", 60, 100, [50], 60)
    calls = len(once.calls)
    for used in range(61, 80):
        assert await tracker.crossed("k", "p", used, 100, [50], 60) == []
    assert len(once.calls) == calls


async def test_only_one_replica_gets_each_threshold() -> None:
    once = FakeOnce()
    replicas = [ThresholdTracker(once) for _ in range(5)]
    results = await asyncio.gather(
        *(r.crossed("team:ml:tokens", "2026-11-03", 900, 1000, [50, 80], 86400) for r in replicas)
    )
    flat = sorted(pct for result in results for pct in result)
    assert flat == [50, 80]


async def test_local_memory_expires_with_the_ttl() -> None:
    now = [0.0]
    once = FakeOnce()
    tracker = ThresholdTracker(once, clock=lambda: now[0])
    await tracker.crossed("k", "p", 60, 100, [50], 10)
    now[0] = 11.0  # the store's key has expired too: the tracker asks again
    once.keys.clear()
    assert await tracker.crossed("k", "p", 60, 100, [50], 10) == [50]


async def test_a_failing_store_is_retried_later() -> None:
    once = FakeOnce()
    once.broken = True
    tracker = ThresholdTracker(once)
    assert await tracker.crossed("k", "p", 90, 100, [50, 80], 60) == []
    once.broken = False
    assert await tracker.crossed("k", "p", 90, 100, [50, 80], 60) == [50, 80]


async def test_memory_stays_bounded() -> None:
    once = FakeOnce()
    tracker = ThresholdTracker(once, max_remembered=10)
    for i in range(50):
        await tracker.crossed(f"k{i}", "p", 100, 100, [100], 3600)
    assert len(tracker._claimed) <= 10


def test_format_usd_is_exact() -> None:
    assert format_usd(80_123_456) == "80.123456"
    assert format_usd(100 * USD) == "100.000000"
    assert format_usd(1) == "0.000001"
    assert format_usd(0) == "0.000000"


def test_budget_event_in_usd() -> None:
    moment = datetime(2026, 11, 3, 10, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    event = budget_event(
        budget="acme-monthly",
        per="tenant",
        scope_id="acme",
        period_id="2026-11",
        threshold=80,
        used=80_500_000,
        limit=100 * USD,
        unit="usd",
        now=moment,
    )
    assert event == {
        "type": "budget.threshold",
        "time": "2026-11-03T09:00:05Z",
        "budget": "acme-monthly",
        "scope": {"per": "tenant", "id": "acme"},
        "period": "2026-11",
        "threshold_percent": 80,
        "unit": "usd",
        "used": "80.500000",
        "limit": "100.000000",
    }
    assert "mode" not in event
    orjson.dumps(event)  # JSON-serialisable as is


def test_budget_event_in_tokens_uses_integers() -> None:
    before = datetime.now(UTC).replace(microsecond=0)  # the event's time is in whole seconds
    event = budget_event(
        budget="key-daily-tokens",
        per="key",
        scope_id="key_123",
        period_id="2026-11-03",
        threshold=100,
        used=1_000_042,
        limit=1_000_000,
        unit="tokens",
        mode="soft",
    )
    assert event["mode"] == "soft"
    assert event["used"] == 1_000_042 and event["limit"] == 1_000_000
    # Without ``now`` the event is stamped with the current time, in UTC.
    assert event["time"].endswith("Z")
    sent = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    assert before <= sent <= datetime.now(UTC)


@pytest.mark.parametrize("used", [0, 49])
async def test_nothing_below_the_lowest_threshold_touches_the_store(used: int) -> None:
    once = FakeOnce()
    assert await ThresholdTracker(once).crossed("k", "p", used, 100, [50], 60) == []
    assert once.calls == []

"""MemoryCounterStore on its own: exact GCRA against a rational reference, bounded memory,
the in-line path with per-call costs.

The cases shared with Redis live in tests/integration/test_state_redis.py. Its speed is the
benchmark's business (``bench/compare.py --b memory``), not a timed unit test's.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from gatewise.state.base import Adjustment, Check, Quota, Rate, Slots
from gatewise.state.memory import MemoryCounterStore


class Clock:
    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ReferenceGcra:
    """The textbook formulas with exact fractions: what the integer version must match."""

    def __init__(self, limit: int, period_us: int) -> None:
        self.limit, self.tau = limit, period_us
        self.interval = Fraction(period_us, limit)
        self.tat: Fraction | None = None

    def admit(self, now: int, cost: int) -> tuple[bool, int, int, int]:
        """(allowed, remaining, reset_after µs, retry_after µs), as the store reports them."""
        tat = max(self.tat if self.tat is not None else Fraction(now), Fraction(now))
        new = tat + cost * self.interval
        if new - now <= self.tau:
            self.tat = new
            remaining = math.floor((self.tau - (new - now)) / self.interval)
            return True, remaining, math.ceil(new - now), 0
        remaining = max(0, math.floor((self.tau - (tat - now)) / self.interval))
        return False, remaining, math.ceil(tat - now), math.ceil(new - now - self.tau)

    def settle(self, now: int, delta: int) -> None:
        if self.tat is None and delta <= 0:
            return
        tat = max(self.tat if self.tat is not None else Fraction(now), Fraction(now))
        self.tat = max(tat + delta * self.interval, Fraction(now))


steps = st.lists(
    st.tuples(
        st.sampled_from(["admit", "admit", "admit", "settle"]),
        st.integers(0, 3_000_000),  # µs to advance first
        st.integers(-40, 40),  # cost (admit: its absolute value) or delta (settle)
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 50),
    period_us=st.integers(1_000, 10_000_000),
    start_us=st.integers(0, 10**13),
    steps=steps,
)
async def test_rate_matches_the_exact_rational_gcra(
    limit: int, period_us: int, start_us: int, steps: list[tuple[str, int, int]]
) -> None:
    clock = Clock(start_us / 1e6)
    store = MemoryCounterStore(clock)
    reference = ReferenceGcra(limit, period_us)
    now = start_us
    period = period_us / 1e6
    for op, advance, amount in steps:
        now += advance
        clock.now = now / 1e6
        if op == "settle":
            await store.settle([Adjustment(Rate("k", limit, period, 0), amount)], [])
            reference.settle(now, amount)
            continue
        outcome = await store.admit([Rate("k", limit, period, abs(amount))])
        allowed, remaining, reset_us, retry_us = reference.admit(now, abs(amount))
        state = outcome.states[0]
        assert (outcome.allowed, state.remaining) == (allowed, remaining)  # exact
        # The reported waits are floating point: within a microsecond of the exact value.
        assert abs(round(state.reset_after * 1e6) - reset_us) <= 1
        assert abs(round(outcome.retry_after * 1e6) - retry_us) <= 1


async def test_expired_keys_are_swept_so_memory_stays_bounded() -> None:
    clock = Clock()
    store = MemoryCounterStore(clock, sweep_every=10.0)
    for i in range(1000):
        await store.admit(
            [
                Rate(f"r{i}", 5, 1.0, 1),
                Quota(f"q{i}", 10, 1, ttl=2.0),
                Slots(f"s{i}", 2, ttl=3.0),
            ]
        )
        await store.once(f"o{i}", 4.0)
    assert len(store) == 4000
    clock.now += 5.0
    await store.admit([Rate("live", 5, 60.0, 1)])  # not sweep time yet: entries linger
    assert len(store) == 4001
    clock.now += 10.0
    await store.admit([Rate("live", 5, 60.0, 1)])  # now they are swept; "live" stays
    assert len(store) == 1


async def test_expired_entries_read_as_fresh_before_any_sweep() -> None:
    clock = Clock()
    store = MemoryCounterStore(clock, sweep_every=3600.0)
    quota = Quota("q", limit=10, cost=6, ttl=5.0)
    assert (await store.admit([quota])).states[0].used == 6
    clock.now += 4.9
    assert not (await store.admit([quota])).allowed
    clock.now += 0.2  # 5.1 s after the last change: the key is gone
    assert (await store.admit([quota])).states[0].used == 6
    assert await store.once("o", 1.0)
    clock.now += 1.0
    assert await store.once("o", 1.0)


async def test_a_quota_lives_ttl_after_its_last_change() -> None:
    clock = Clock()
    store = MemoryCounterStore(clock)
    quota = Quota("q", limit=100, cost=10, ttl=5.0)
    await store.admit([quota])
    clock.now += 4.0
    assert await store.settle([Adjustment(quota, 5)], []) == [15]
    clock.now += 4.0  # 8 s after the first charge, 4 s after the settle
    assert (await store.admit([quota])).states[0].used == 25


def test_admit_now_charges_per_call_costs_on_the_same_checks() -> None:
    """TrafficControl's in-line path: the same check objects on every call, that call's
    costs beside them; the counters add up exactly and the checks' own costs stay unused."""
    clock = Clock()
    store = MemoryCounterStore(clock)
    checks: list[Check] = [
        Rate("rpm", limit=1000, period=60.0, cost=1),
        Rate("tpm", limit=100_000, period=60.0, cost=500),
        Quota("usd", limit=10**9, cost=1200, ttl=3600.0),
    ]
    tokens = usd = 0
    for call in range(1, 101):
        outcome = store.admit_now(checks, [1, 10 * call, 7 * call])
        tokens, usd = tokens + 10 * call, usd + 7 * call
        assert outcome.allowed
        remaining = [state.remaining for state in outcome.states]
        assert remaining == [1000 - call, 100_000 - tokens, 10**9 - usd]
        assert outcome.states[2].used == usd
    outcome = store.admit_now(checks)  # without costs: the checks' own
    remaining = [state.remaining for state in outcome.states]
    assert remaining == [1000 - 101, 100_000 - tokens - 500, 10**9 - usd - 1200]

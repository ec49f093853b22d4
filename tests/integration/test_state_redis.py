"""Counter stores: the same cases against memory and a real Redis, then Redis's own promises.

The shared cases step a fake clock, which the Redis store passes to its script
instead of ``TIME`` (a test-only hook), so both backends see identical times.
Redis tests use a key prefix of their own and skip when 127.0.0.1:6379 is
unreachable, unless ``GATEWISE_REQUIRE_SERVICES`` is set (then they fail).
Failure tests run a private ``redis-server`` they can kill and restart.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from gatewise.state.base import (
    Adjustment,
    Check,
    Outcome,
    Quota,
    Rate,
    Slots,
    slot_member,
)
from gatewise.state.memory import MemoryCounterStore
from gatewise.state.redis import RedisCounterStore
from tests.redis_support import require_redis

REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_SERVER = "/usr/bin/redis-server"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    store: MemoryCounterStore | RedisCounterStore
    clock: Clock
    kind: str

    async def admit(self, *checks: Check) -> Outcome:
        return await self.store.admit(list(checks))


async def _delete_prefix(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"gwtest:{uuid.uuid4().hex[:10]}:"


@pytest.fixture(params=["memory", "redis"])
async def env(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Env]:
    clock = Clock()
    store: MemoryCounterStore | RedisCounterStore
    if request.param == "memory":
        store = MemoryCounterStore(clock)
    else:
        require_redis()
        store = RedisCounterStore(REDIS_URL, prefix=prefix, timeout=1.0, clock=clock)
    await store.start()
    yield Env(store, clock, request.param)
    await store.close()
    if request.param == "redis":
        await _delete_prefix(prefix)


def remaining(outcome: Outcome) -> list[int]:
    return [state.remaining for state in outcome.states]


# -- the shared cases ---------------------------------------------------------------


async def test_burst_is_exactly_limit_and_refills_one_interval_at_a_time(env: Env) -> None:
    rate = Rate("r", limit=3, period=1.0, cost=1)  # T = 1/3 s: not a whole number of µs
    assert [remaining(await env.admit(rate)) for _ in range(3)] == [[2], [1], [0]]
    refused = await env.admit(rate)
    assert (refused.allowed, refused.refused) == (False, 0)
    assert refused.retry_after == pytest.approx(1 / 3, abs=2e-6)
    env.clock.advance(refused.retry_after - 0.000_01)
    assert not (await env.admit(rate)).allowed
    env.clock.advance(0.000_01)
    assert (await env.admit(rate)).allowed
    assert not (await env.admit(rate)).allowed
    env.clock.advance(10.0)  # idle for long: the bucket is full again, and no fuller
    assert [(await env.admit(rate)).allowed for _ in range(4)] == [True, True, True, False]


async def test_large_limits_with_fractional_intervals_stay_exact(env: Env) -> None:
    day = Rate("tokens", limit=1_000_000_000, period=86_400.0, cost=100_000_000)  # T = 86.4 µs
    assert [(await env.admit(day)).allowed for _ in range(11)] == [True] * 10 + [False]
    one = Rate("tokens", limit=1_000_000_000, period=86_400.0, cost=1)
    refused = await env.admit(one)
    assert not refused.allowed and refused.retry_after == 87e-6  # 86.4 µs, rounded up
    env.clock.advance(86e-6)
    assert not (await env.admit(one)).allowed
    env.clock.advance(1e-6)
    outcome = await env.admit(one)
    assert outcome.allowed and outcome.states[0].remaining == 0


async def test_cost_counts_units_and_a_refused_cost_charges_nothing(env: Env) -> None:
    tokens = Rate("t", limit=100, period=60.0, cost=60)
    first = await env.admit(tokens)
    assert first.allowed and remaining(first) == [40]
    assert first.states[0].reset_after == pytest.approx(36.0)
    too_many = await env.admit(Rate("t", 100, 60.0, 41))
    assert not too_many.allowed and too_many.retry_after == pytest.approx(0.6)
    assert remaining(too_many) == [40]
    assert remaining(await env.admit(Rate("t", 100, 60.0, 40))) == [0]
    never = await env.admit(Rate("fresh", 100, 60.0, 101))
    assert not never.allowed and remaining(never) == [100]


async def test_one_refusal_charges_no_counter_at_all(env: Env) -> None:
    a = Rate("a", limit=10, period=60.0, cost=1)
    b = Quota("b", limit=5, cost=3, ttl=60.0)
    c = Rate("c", limit=1, period=60.0, cost=1)
    s = Slots("s", limit=4)
    assert remaining(await env.admit(a, b, s, c)) == [9, 2, 3, 0]
    refused = await env.admit(a, b, s, c)  # b refuses first (3 + 3 > 5), c would too
    assert (refused.allowed, refused.refused, refused.retry_after) == (False, 1, 0.0)
    assert remaining(refused) == [9, 2, 3, 0]  # as they stand: nothing charged
    assert [state.used for state in refused.states] == [0, 3, 0, 0]
    refused = await env.admit(a, Quota("b", 5, 1, 60.0), s, c)  # only c refuses now
    assert refused.refused == 3 and refused.retry_after == pytest.approx(60.0)
    assert remaining(await env.admit(a, Quota("b", 5, 2, 60.0), s)) == [8, 0, 2]


async def test_a_key_named_twice_sees_its_own_first_charge(env: Env) -> None:
    rate = Rate("dup", limit=3, period=60.0, cost=2)
    refused = await env.admit(rate, rate)
    assert (refused.allowed, refused.refused) == (False, 1)
    assert remaining(await env.admit(rate)) == [1]  # the refused pair charged nothing
    quota = Quota("q", limit=10, cost=4, ttl=60.0)
    assert [s.used for s in (await env.admit(quota, quota)).states] == [4, 8]


async def test_hard_quota_refuses_and_soft_quota_only_counts(env: Env) -> None:
    hard = Quota("month:2026-11", limit=10, cost=4, ttl=3600.0)
    assert [(await env.admit(hard)).states[0].used for _ in range(2)] == [4, 8]
    refused = await env.admit(hard)
    assert not refused.allowed and refused.states[0].used == 8
    assert refused.states[0].remaining == 2
    full = await env.admit(Quota("month:2026-11", 10, 2, 3600.0))
    assert full.allowed and (full.states[0].used, full.states[0].remaining) == (10, 0)
    soft = Quota("soft", limit=10, cost=4, ttl=3600.0, hard=False)
    outcomes = [await env.admit(soft) for _ in range(4)]
    assert all(o.allowed for o in outcomes)
    assert [(o.states[0].used, o.states[0].remaining) for o in outcomes][-1] == (16, 0)


async def test_slots_are_taken_released_and_expire(env: Env) -> None:
    slots = Slots("conc", limit=2, ttl=30.0)
    assert [(await env.admit(slots)).allowed for _ in range(3)] == [True, True, False]
    await env.store.settle([], [slots])
    assert remaining(await env.admit(slots)) == [0]
    env.clock.advance(30.0)  # a crashed worker's slots do not leak forever
    assert remaining(await env.admit(slots)) == [1]
    await env.store.settle([], [slots, slots, slots])  # never below zero
    assert remaining(await env.admit(slots)) == [1]


async def test_a_leaked_slot_expires_on_time_under_steady_traffic(env: Env) -> None:
    slots = Slots("leak", limit=2, ttl=30.0)
    assert (await env.admit(slots)).allowed  # this one is never released
    for _ in range(5):  # other requests come and go; the leak still holds a slot
        env.clock.advance(5.0)
        assert remaining(await env.admit(slots)) == [0]
        await env.store.settle([], [slots])
    env.clock.advance(5.001)  # 30 s after the leak: it is gone, the others were released
    assert remaining(await env.admit(slots)) == [1]


async def test_settle_refunds_and_charges(env: Env) -> None:
    tokens = Rate("tok", limit=10, period=60.0, cost=8)
    assert remaining(await env.admit(tokens)) == [2]
    assert await env.store.settle([Adjustment(tokens, -5)], []) == [0]
    assert remaining(await env.admit(Rate("tok", 10, 60.0, 7))) == [0]
    await env.store.settle([Adjustment(tokens, 3)], [])  # more than estimated: owed
    refused = await env.admit(Rate("tok", 10, 60.0, 1))
    assert not refused.allowed and refused.retry_after == pytest.approx(24.0)
    # A refund never banks credit beyond a full bucket.
    await env.store.settle([Adjustment(Rate("new", 10, 60.0, 0), -5)], [])
    await env.admit(Rate("tok2", 10, 60.0, 1))
    await env.store.settle([Adjustment(Rate("tok2", 10, 60.0, 0), -5)], [])
    for key in ("new", "tok2"):
        assert remaining(await env.admit(Rate(key, 10, 60.0, 10))) == [0]
        assert not (await env.admit(Rate(key, 10, 60.0, 1))).allowed
    budget = Quota("usd", limit=1_000_000, cost=300_000, ttl=3600.0)
    await env.admit(budget)
    assert await env.store.settle([Adjustment(budget, -120_000)], []) == [180_000]
    assert await env.store.settle([Adjustment(budget, -500_000), Adjustment(budget, 7)], []) == [
        0,
        7,
    ]
    assert await env.store.settle([Adjustment(Quota("absent", 10, 0, 60.0), -3)], []) == [0]


async def test_an_admission_carries_a_settlement_applied_first(env: Env) -> None:
    """Finished calls' corrections and freed slots ride with the next admission (one round
    trip): they apply before its checks, also when it is refused."""
    slot = Slots("one", limit=1, ttl=30.0)
    tokens = Rate("tpm", limit=100, period=60.0, cost=90)
    budget = Quota("usd", limit=1_000, cost=600, ttl=3600.0)
    first = await env.store.admit([slot, tokens, budget])
    assert first.allowed and first.settled == []
    # The same caller again: the first call is over (60 tokens and 200 USD given back) and
    # its slot goes with this admission, so the second fits all three limits.
    settlement = ([Adjustment(tokens, -60), Adjustment(budget, -200)], [slot])
    second = await env.store.admit([slot, Rate("tpm", 100, 60.0, 50), budget], settlement)
    assert second.allowed and second.settled == [0, 400]
    assert remaining(second) == [0, 20, 0]  # 30 + 50 tokens; 400 + 600 USD
    # A refused admission still applies what it carries.
    third = await env.store.admit([slot], ([Adjustment(budget, -1_000)], []))
    assert not third.allowed and third.settled == [0]
    assert remaining(await env.store.admit([budget])) == [400]


async def test_once_deduplicates_within_ttl(env: Env) -> None:
    assert await env.store.once("alert:team-a:80", 0.2)
    assert not await env.store.once("alert:team-a:80", 0.2)
    assert await env.store.once("alert:team-a:90", 0.2)
    if env.kind == "memory":
        env.clock.advance(0.25)
    else:
        await asyncio.sleep(0.25)  # SET NX PX lives on Redis's own clock
    assert await env.store.once("alert:team-a:80", 0.2)


# -- Redis on its own clock, expiry, exactness under concurrency -----------------------


@pytest.fixture
async def redis_store(prefix: str) -> AsyncIterator[RedisCounterStore]:
    require_redis()
    store = RedisCounterStore(REDIS_URL, prefix=prefix, timeout=1.0)
    await store.start()
    yield store
    await store.close()
    await _delete_prefix(prefix)


async def test_redis_time_drives_the_rate_and_every_key_expires(
    redis_store: RedisCounterStore, prefix: str
) -> None:
    # A 1 s period (one request back every 0.5 s): the three calls and the TTL reads below
    # have half a second, not a few milliseconds, on a loaded machine.
    rate = Rate("r", limit=2, period=1.0, cost=1)
    checks: list[Check] = [rate, Quota("q", 10, 1, ttl=5.0), Slots("s", 3, ttl=7.0)]
    assert (await redis_store.admit(checks)).allowed
    assert (await redis_store.admit([rate])).allowed
    refused = await redis_store.admit([rate])
    assert not refused.allowed and 0 < refused.retry_after <= 0.5
    client = Redis.from_url(REDIS_URL)
    ttls = [await client.pttl(prefix + key) for key in ("r", "q", "s")]
    await client.aclose()
    assert 1000 < ttls[0] <= 2000 and 4500 < ttls[1] <= 5000 and 6500 < ttls[2] <= 7000
    await asyncio.sleep(refused.retry_after + 0.01)
    assert (await redis_store.admit([rate])).allowed


async def test_a_release_names_its_slot_and_a_gone_slot_frees_nobody(
    redis_store: RedisCounterStore, prefix: str
) -> None:
    """A release replayed after its slot is gone (expired, or the server restarted empty)
    must not free a slot another call holds now."""
    slots = Slots("named", limit=1, ttl=30.0)
    first = await redis_store.admit([Rate("other", 10, 60.0, 1), slots])
    mine = Slots(slots.key, slots.limit, slots.ttl, slot_member(first.token, 1))
    await redis_store.settle([], [mine])
    second = await redis_store.admit([slots])  # the slot was free: another call takes it
    assert second.allowed
    await redis_store.settle([], [mine])  # the first call's release, replayed: a no-op
    assert not (await redis_store.admit([slots])).allowed  # the second call still holds it
    theirs = Slots(slots.key, slots.limit, slots.ttl, slot_member(second.token, 0))
    third = await redis_store.admit([slots], ([], [theirs]))  # carried by an admission
    assert third.allowed


async def test_a_slot_key_lives_as_long_as_its_longest_slot(
    redis_store: RedisCounterStore, prefix: str
) -> None:
    assert (await redis_store.admit([Slots("mixed", 5, ttl=30.0)])).allowed
    assert (await redis_store.admit([Slots("mixed", 5, ttl=2.0)])).allowed  # a faster model
    client = Redis.from_url(REDIS_URL)
    ttl = await client.pttl(prefix + "mixed")
    await client.aclose()
    assert 28_000 < ttl <= 30_000


async def test_exact_under_concurrency_from_two_pools(prefix: str) -> None:
    require_redis()
    stores = [RedisCounterStore(REDIS_URL, prefix=prefix, timeout=2.0) for _ in range(2)]
    try:
        for check in (
            Rate("rate", limit=37, period=3600.0, cost=1),
            Quota("quota", limit=37, cost=1, ttl=60.0),
            Slots("slots", limit=37),
        ):
            outcomes = await asyncio.gather(*(stores[i % 2].admit([check]) for i in range(200)))
            assert sum(o.allowed for o in outcomes) == 37, check
    finally:
        for store in stores:
            await store.close()
        await _delete_prefix(prefix)


async def test_admit_latency_against_local_redis(redis_store: RedisCounterStore) -> None:
    checks: list[Check] = [
        Rate("rpm", limit=10**9, period=60.0, cost=1),
        Rate("tpm", limit=10**9, period=60.0, cost=500),
        Quota("usd", limit=10**12, cost=1200, ttl=3600.0),
    ]
    await redis_store.admit(checks)  # the script is cached after this
    samples = []
    for _ in range(2000):
        start = time.perf_counter()
        await redis_store.admit(checks)
        samples.append(time.perf_counter() - start)
    p50 = statistics.median(samples) * 1e6
    p99 = statistics.quantiles(samples, n=100)[98] * 1e6
    print(f"\nRedis admit, 3 checks: p50 {p50:.0f} µs, p99 {p99:.0f} µs over 2000 calls")
    assert p50 < 5000


async def test_redis_and_memory_decide_identically(prefix: str) -> None:
    """A seeded random walk of admits and settles gives the same outcomes on both stores."""
    require_redis()
    rng = random.Random(5)
    clock = Clock(rng.uniform(0, 10**7))
    memory = MemoryCounterStore(clock)
    redis_store = RedisCounterStore(REDIS_URL, prefix=prefix, timeout=1.0, clock=clock)
    try:
        for _ in range(400):
            clock.advance(rng.choice([0.0, rng.uniform(0, 0.5), rng.uniform(0, 5)]))
            checks: list[Check] = [
                Rate(rng.choice(["r1", "r2"]), 7, 1.3, rng.randint(0, 4)),
                Rate("tpm", 1000, 60.0, rng.randint(0, 300)),
                Quota("q", 5000, rng.randint(0, 200), ttl=3600.0, hard=rng.random() < 0.8),
                Slots("s", 3, ttl=4.0),
            ]
            rng.shuffle(checks)
            if rng.random() < 0.3:
                adjustments = [
                    Adjustment(c, rng.randint(-100, 50))
                    for c in checks
                    if isinstance(c, Rate | Quota)
                ]
                release = [Slots("s", 3, ttl=4.0)] * rng.randint(0, 2)
                expected = await memory.settle(adjustments, release)
                assert await redis_store.settle(adjustments, release) == expected
            else:
                outcome = await redis_store.admit(checks)
                assert outcome.token  # Redis names the slots it gives (memory keeps no names)
                outcome.token = ""
                assert outcome == await memory.admit(checks)
    finally:
        await redis_store.close()
        await _delete_prefix(prefix)

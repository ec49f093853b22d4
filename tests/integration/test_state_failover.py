"""When Redis fails: a fast StateUnavailableError, never a hang; then fail open or closed.

These tests run a private ``redis-server`` on a free port so they can kill it
mid-test and start it again on the same port.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from gatewise.config.limits import LimitConfig
from gatewise.core.context import RequestContext
from gatewise.core.types import Usage
from gatewise.identity.principal import Principal
from gatewise.identity.roles import Role
from gatewise.policies.limits import Planner
from gatewise.policies.traffic import Admission, TrafficControl
from gatewise.state.base import (
    Adjustment,
    Check,
    Outcome,
    Quota,
    Rate,
    Settlement,
    Slots,
    StateUnavailableError,
)
from gatewise.state.memory import MemoryCounterStore
from gatewise.state.redis import RedisCounterStore
from gatewise.state.resilient import ResilientStore

REDIS_SERVER = "/usr/bin/redis-server"
#: Seconds within which a failure must be reported: twenty times the stores' 0.1 s timeout,
#: so a loaded machine still makes it, yet far short of a hang.
NO_HANG = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    """A throwaway redis-server that a test may kill and restart: without persistence, or
    (``folder``) with an append-only file there, so a restart finds its keys again."""

    def __init__(self, folder: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.folder = folder

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        if self.folder is None:
            command += ["--appendonly", "no"]
        else:
            command += ["--dir", str(self.folder), "--appendonly", "yes"]
            command += ["--appendfsync", "always"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:  # up, and done loading its data (until then it answers -LOADING)
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _require_redis_server() -> None:
    if not os.path.exists(REDIS_SERVER):
        if os.environ.get("GATEWISE_REQUIRE_SERVICES"):
            pytest.fail(f"{REDIS_SERVER} is required but missing")
        pytest.skip(f"{REDIS_SERVER} is missing (set GATEWISE_REQUIRE_SERVICES to fail)")


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    _require_redis_server()
    server = PrivateRedis()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    _require_redis_server()
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """A real store that counts the calls reaching it."""

    def __init__(self, inner: RedisCounterStore) -> None:
        self.inner = inner
        self.calls = 0

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def admit(self, checks: list[Check], settlement: Settlement | None = None) -> Outcome:
        self.calls += 1
        return await self.inner.admit(checks, settlement)

    async def settle(self, adjustments: list[Adjustment], release: list[Slots]) -> list[int]:
        self.calls += 1
        return await self.inner.settle(adjustments, release)

    async def once(self, key: str, ttl: float) -> bool:
        self.calls += 1
        return await self.inner.once(key, ttl)


async def timed_failure(call: object) -> tuple[float, str]:
    assert asyncio.iscoroutine(call)
    start = time.perf_counter()
    with pytest.raises(StateUnavailableError) as error:
        await call
    return time.perf_counter() - start, str(error.value)


RATE = Rate("r", limit=3, period=60.0, cost=1)


async def test_a_closed_port_fails_fast_and_the_error_hides_the_password() -> None:
    port = free_port()
    store = RedisCounterStore(f"redis://:s3cret-pw@127.0.0.1:{port}/2", timeout=0.1)
    await store.start()  # no connection yet: a down Redis does not stop start-up
    for call in (
        store.admit([RATE]),
        store.settle([Adjustment(RATE, -1)], []),
        store.once("k", 1.0),
    ):
        elapsed, message = await timed_failure(call)
        assert elapsed < NO_HANG
        assert f"127.0.0.1:{port}/2" in message and "s3cret" not in message
    await store.close()


async def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        store = RedisCounterStore(url, timeout=0.1)
        elapsed, _ = await timed_failure(store.admit([RATE]))
        assert 0.09 < elapsed < NO_HANG
        await store.close()


async def test_a_killed_server_fails_the_next_call_fast(private_redis: PrivateRedis) -> None:
    store = RedisCounterStore(private_redis.url, timeout=0.1)
    assert (await store.admit([RATE])).allowed
    private_redis.kill()
    elapsed, message = await timed_failure(store.admit([RATE]))
    assert elapsed < NO_HANG and f"127.0.0.1:{private_redis.port}/0" in message
    await store.close()


async def key_exists(url: str, key: str) -> bool:
    client = Redis.from_url(url)
    try:
        return bool(await client.exists(key))
    finally:
        await client.aclose()


async def test_failing_open_keeps_per_process_limits_and_comes_back(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gatewise.state")
    prefix = f"gwtest:{uuid.uuid4().hex[:8]}:"
    primary = Counting(RedisCounterStore(private_redis.url, prefix=prefix, timeout=0.1))
    clock = Clock()
    store = ResilientStore(
        primary, on_error="open", fallback=MemoryCounterStore(), retry_after=1.0, clock=clock
    )
    await store.start()
    assert (await store.admit([RATE])).states[0].remaining == 2
    private_redis.kill()

    start = time.perf_counter()
    outcomes = [await store.admit([RATE]) for _ in range(4)]  # fallback: a fresh limit of 3
    assert time.perf_counter() - start < NO_HANG
    assert [o.allowed for o in outcomes] == [True, True, True, False]
    assert (primary.calls, store.degraded) == (2, True)  # only the first call tried Redis
    quota = Quota("q", limit=10, cost=4, ttl=60.0)
    admitted = await store.admit([quota])
    assert admitted.allowed and admitted.fallback  # so it is settled in the fallback:
    assert store.settle_fallback([Adjustment(quota, -1)], []) == [3]
    assert await store.once("alert", 60.0) and not await store.once("alert", 60.0)
    assert primary.calls == 2

    private_redis.start()  # same port, empty
    assert not (await store.admit([RATE])).allowed  # still the fallback until retry_after
    clock.now += 1.0
    outcome = await store.admit([RATE])
    assert outcome.allowed and outcome.states[0].remaining == 2  # Redis again, fresh key
    assert primary.calls == 3 and not store.degraded
    assert await key_exists(private_redis.url, prefix + "r")

    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == ["WARNING", "INFO"]
    assert f"127.0.0.1:{private_redis.port}" in messages[0][1]
    await store.close()


async def test_failing_closed_refuses_until_the_server_is_back(
    private_redis: PrivateRedis,
) -> None:
    primary = Counting(RedisCounterStore(private_redis.url, timeout=0.1))
    clock = Clock()
    store = ResilientStore(primary, on_error="closed", retry_after=1.0, clock=clock)
    await store.start()
    assert (await store.admit([RATE])).allowed
    private_redis.kill()
    elapsed, _ = await timed_failure(store.admit([RATE]))
    assert elapsed < NO_HANG
    await timed_failure(store.admit([RATE]))  # not retried yet: refused without asking Redis
    assert primary.calls == 2
    private_redis.start()
    clock.now += 1.0
    assert (await store.admit([RATE])).allowed
    assert primary.calls == 3 and not store.degraded
    await store.close()


# -- settlements that fail are kept and replayed --------------------------------------

LIMIT = LimitConfig(per="key", concurrent=1)
CALLER = Principal("key", "key:k1", Role.CONSUMER, "a", tenant_id="t", app_id="a", key_id="k1")


def one_at_a_time(store: ResilientStore) -> TrafficControl:
    return TrafficControl(store, Planner([LIMIT], []), tenant_name=lambda _: None)


async def call_in(traffic: TrafficControl) -> tuple[RequestContext, Admission]:
    """Admit one call of CALLER (raises the 429 when its slot is taken)."""
    ctx = RequestContext(request_id="r", operation="chat", model="m")
    charge = traffic.charge(ctx, CALLER, "m", lambda: 1, 1, None)
    assert charge is not None
    return ctx, await traffic.decide(ctx, charge)


async def call_out(traffic: TrafficControl, ctx: RequestContext, admission: Admission) -> None:
    """The call is over: settle it (and wait, as its reply would, if there is a wait)."""
    ending = traffic.settle(ctx, admission, Usage(prompt_tokens=1, completion_tokens=1))
    if ending is not None:
        await ending
    await asyncio.sleep(0.05)  # a settlement sent in the background has gone by now


async def test_a_release_that_failed_is_replayed_when_redis_is_back(
    persistent_redis: PrivateRedis,
) -> None:
    """Redis crashes while a call runs and comes back with its keys: the call's slot must
    not stay taken for its whole TTL (a caller was locked out for ten minutes)."""
    primary = RedisCounterStore(persistent_redis.url, prefix="gwtest:", timeout=0.1)
    store = ResilientStore(primary, on_error="closed", retry_after=0.2)
    traffic = one_at_a_time(store)
    await store.start()
    ctx, admission = await call_in(traffic)
    persistent_redis.kill()
    await call_out(traffic, ctx, admission)  # the release fails: Redis is down
    persistent_redis.start()  # same port, same keys: the slot is still taken there
    await asyncio.sleep(0.5)  # the release is replayed within retry_after
    ctx, admission = await call_in(traffic)  # admitted: the slot is free again
    await call_out(traffic, ctx, admission)
    await call_in(traffic)
    await traffic.close()
    await store.close()


async def test_a_release_that_failed_rides_with_the_next_admission(
    persistent_redis: PrivateRedis,
) -> None:
    primary = RedisCounterStore(persistent_redis.url, prefix="gwtest:", timeout=0.1)
    # Replayed on its own only after a minute: the next admission must carry it.
    store = ResilientStore(primary, on_error="closed", retry_after=60.0, clock=Clock())
    traffic = one_at_a_time(store)
    await store.start()
    ctx, admission = await call_in(traffic)
    persistent_redis.kill()
    await call_out(traffic, ctx, admission)
    persistent_redis.start()
    store._clock.now += 60.0  # type: ignore[attr-defined]  # time to try Redis again
    await call_in(traffic)
    await store.close()


async def test_failing_open_settles_each_call_where_it_was_admitted(
    private_redis: PrivateRedis,
) -> None:
    """While Redis is down, a call the fallback admitted frees its slot there; one Redis
    admitted before the outage frees its slot in Redis once it is back."""
    primary = RedisCounterStore(private_redis.url, prefix="gwtest:", timeout=0.1)
    store = ResilientStore(primary, on_error="open", retry_after=0.2)
    traffic = one_at_a_time(store)
    await store.start()
    before, in_redis = await call_in(traffic)
    private_redis.kill()
    for _ in range(3):  # the fallback has its own slot: taken and freed, call after call
        ctx, admission = await call_in(traffic)
        assert admission.fallback
        await call_out(traffic, ctx, admission)
    await call_out(traffic, before, in_redis)  # kept for Redis
    assert store.owed == 1
    await traffic.close()
    await store.close()

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

import pytest
from redis.asyncio import Redis

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    """A throwaway redis-server (no persistence) that a test may kill and restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if not os.path.exists(REDIS_SERVER):
        if os.environ.get("GATEWISE_REQUIRE_SERVICES"):
            pytest.fail(f"{REDIS_SERVER} is required but missing")
        pytest.skip(f"{REDIS_SERVER} is missing (set GATEWISE_REQUIRE_SERVICES to fail)")
    server = PrivateRedis()
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
        assert elapsed < 1.0
        assert f"127.0.0.1:{port}/2" in message and "s3cret" not in message
    await store.close()


async def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        store = RedisCounterStore(url, timeout=0.1)
        elapsed, _ = await timed_failure(store.admit([RATE]))
        assert 0.09 < elapsed < 1.0
        await store.close()


async def test_a_killed_server_fails_the_next_call_fast(private_redis: PrivateRedis) -> None:
    store = RedisCounterStore(private_redis.url, timeout=0.1)
    assert (await store.admit([RATE])).allowed
    private_redis.kill()
    elapsed, message = await timed_failure(store.admit([RATE]))
    assert elapsed < 1.0 and f"127.0.0.1:{private_redis.port}/0" in message
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
    assert time.perf_counter() - start < 1.0
    assert [o.allowed for o in outcomes] == [True, True, True, False]
    assert (primary.calls, store.degraded) == (2, True)  # only the first call tried Redis
    quota = Quota("q", limit=10, cost=4, ttl=60.0)
    assert (await store.admit([quota])).allowed
    assert await store.settle([Adjustment(quota, -1)], []) == [3]
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
    assert elapsed < 1.0
    elapsed, _ = await timed_failure(store.admit([RATE]))  # not retried yet: no wait at all
    assert elapsed < 0.05 and primary.calls == 2
    private_redis.start()
    clock.now += 1.0
    assert (await store.admit([RATE])).allowed
    assert primary.calls == 3 and not store.degraded
    await store.close()

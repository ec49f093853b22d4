"""Breaker and cool-down state shared through a real Redis: two boards stand for two
replicas, each with its own ``SharedHealth`` on the same key.

Each test uses a key prefix of its own and deletes its hash afterwards. Monotonic
times are stepped by hand; wall times are real (entries expire by Redis-side data,
so they must be in the future).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from gatewise.routing.health import BreakerSettings, HealthBoard
from gatewise.routing.shared import SharedHealth
from gatewise.state.resp import Address, RespClient
from tests.redis_support import require_redis

SETTINGS = BreakerSettings(failures=5, cooldown_s=30.0)


@dataclass
class Replica:
    board: HealthBoard
    shared: SharedHealth
    #: This replica's monotonic clock: independent of the other's, as in real life.
    now: float

    async def sync(self, wall: float) -> None:
        await self.shared.flush(self.board, self.now, wall)
        await self.shared.refresh(self.board, self.now, wall)


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[Replica, Replica, RespClient]]:
    url = require_redis()
    prefix = f"test:{uuid.uuid4().hex}:"
    raw = RespClient(Address.from_url(url), timeout=2.0)
    a = Replica(HealthBoard(SETTINGS), SharedHealth(url, prefix=prefix, timeout=2.0), 100.0)
    b = Replica(HealthBoard(SETTINGS), SharedHealth(raw, prefix=prefix), 50_000.0)
    yield a, b, raw
    await raw.call("DEL", a.shared.key)
    await a.shared.close()
    await b.shared.close()
    await raw.close()


def break_it(replica: Replica, id: str) -> None:
    health = replica.board.get(id)
    for _ in range(SETTINGS.failures):
        health.started()
        health.finished("failure", replica.now)


async def test_an_open_breaker_reaches_the_other_replica(
    replicas: tuple[Replica, Replica, RespClient],
) -> None:
    a, b, raw = replicas
    wall = time.time()
    b.board.get("openai/gpt")  # B has served it before
    break_it(a, "openai/gpt")
    await a.sync(wall)
    entry = await raw.call("HGET", a.shared.key, "breaker:openai/gpt")
    assert isinstance(entry, bytes) and entry.startswith(b"open:")
    assert int(entry[5:]) == pytest.approx((wall + SETTINGS.cooldown_s) * 1000, abs=2)
    assert b.board.available("openai/gpt", b.now)
    await b.sync(wall)
    assert b.board.troubled == {"openai/gpt"}
    health = b.board.get("openai/gpt")
    assert health.state(b.now) == "open"
    assert not b.board.available("openai/gpt", b.now + SETTINGS.cooldown_s - 0.1)
    assert b.board.available("openai/gpt", b.now + SETTINGS.cooldown_s + 0.1)
    assert b.board.pending() == []  # applied, not echoed back


async def test_a_deployment_b_never_saw_is_opened_too(
    replicas: tuple[Replica, Replica, RespClient],
) -> None:
    a, b, _ = replicas
    wall = time.time()
    break_it(a, "anthropic/claude")
    await a.sync(wall)
    await b.sync(wall + 1)  # B looks a second later
    snapshot = b.board.get("anthropic/claude").snapshot(b.now)
    assert snapshot["state"] == "open"
    assert snapshot["open_remaining_s"] == pytest.approx(SETTINGS.cooldown_s - 1, abs=0.01)


async def test_a_cooldown_reaches_the_other_replica(
    replicas: tuple[Replica, Replica, RespClient],
) -> None:
    a, b, _ = replicas
    wall = time.time()
    a.board.get("d").cool_down(a.now + 12.0)
    await a.sync(wall)
    await b.sync(wall)
    health = b.board.get("d")
    assert health.cooling(b.now + 11.9)
    assert not health.cooling(b.now + 12.01)
    assert health.state(b.now) == "closed"
    assert not b.board.available("d", b.now + 1)


async def test_closing_on_one_replica_clears_it_for_the_other(
    replicas: tuple[Replica, Replica, RespClient],
) -> None:
    a, b, raw = replicas
    wall = time.time()
    break_it(a, "d")
    await a.sync(wall)
    await b.sync(wall)
    assert not b.board.available("d", b.now)
    # A's cool-down passes, its probe succeeds; B is also past the cool-down (half-open).
    a.now += SETTINGS.cooldown_s
    b.now += SETTINGS.cooldown_s + 0.2
    assert a.board.get("d").admit(a.now)
    assert a.board.get("d").finished("ok", a.now) == "closed"
    await a.sync(wall + SETTINGS.cooldown_s + 0.1)
    entry = await raw.call("HGET", a.shared.key, "breaker:d")
    assert isinstance(entry, bytes) and entry.startswith(b"closed:")
    assert b.board.get("d").state(b.now) == "half_open"
    await b.sync(wall + SETTINGS.cooldown_s + 0.2)
    assert b.board.get("d").state(b.now) == "closed"
    assert b.board.available("d", b.now)
    assert b.board.troubled == set()
    assert b.board.pending() == []


async def test_a_close_does_not_undo_a_breaker_that_opened_after_it(
    replicas: tuple[Replica, Replica, RespClient],
) -> None:
    a, b, _ = replicas
    wall = time.time()
    await a.shared.publish_closed("d", wall - 10)  # an old close of A's
    break_it(b, "d")  # B's own, newer verdict (not flushed yet)
    await b.shared.refresh(b.board, b.now, wall)
    assert b.board.get("d").state(b.now) == "open"
    b.board.pending()  # pretend it was flushed: the close is still older than the opening
    await b.shared.refresh(b.board, b.now, wall)
    assert b.board.get("d").state(b.now) == "open"


async def test_a_newer_local_transition_is_not_overwritten_by_a_stale_read(
    replicas: tuple[Replica, Replica, RespClient],
) -> None:
    a, b, raw = replicas
    wall = time.time()
    break_it(a, "d")
    await a.shared.flush(a.board, a.now, wall)
    await b.shared.publish_open("d", wall + 60)  # B holds it open longer
    # A's probe succeeds before A flushes or reads again.
    a.now += SETTINGS.cooldown_s
    health = a.board.get("d")
    assert health.admit(a.now)
    assert health.finished("ok", a.now) == "closed"
    await a.shared.refresh(a.board, a.now, wall + SETTINGS.cooldown_s)
    assert health.state(a.now) == "closed"  # B's older entry did not reopen it
    await a.sync(wall + SETTINGS.cooldown_s)
    entry = await raw.call("HGET", a.shared.key, "breaker:d")
    assert isinstance(entry, bytes) and entry.startswith(b"closed:")
    assert health.state(a.now) == "closed"


async def test_expired_entries_are_ignored_and_pruned(
    replicas: tuple[Replica, Replica, RespClient],
) -> None:
    a, b, raw = replicas
    wall = time.time()
    await a.shared.publish_open("old", wall - 5)
    await a.shared.publish_cooldown("old", wall - 5)
    await a.shared.publish_closed("gone", wall - 61)  # older than closed_ttl (60 s)
    await a.shared.publish_closed("recent", wall - 1)
    await a.shared.publish_open("new", wall + 60)
    await raw.call("HSET", a.shared.key, "breaker:junk", "open:soon")
    await b.sync(wall)
    assert b.board.peek("old") is None
    assert b.board.peek("junk") is None
    assert b.board.get("new").state(b.now) == "open"
    fields = await raw.call("HKEYS", a.shared.key)
    assert isinstance(fields, list)
    assert sorted(field for field in fields if isinstance(field, bytes)) == [
        b"breaker:new",
        b"breaker:recent",
    ]
    assert len(fields) == 2


async def test_an_unreachable_redis_is_survived_with_local_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shared = SharedHealth("redis://127.0.0.1:1/0", prefix="test:down:", timeout=0.5)
    board = HealthBoard(SETTINGS)
    replica = Replica(board, shared, 10.0)
    break_it(replica, "d")
    board.get("e").cool_down(20.0)
    with caplog.at_level(logging.WARNING, logger="gatewise.routing"):
        assert not await shared.publish_open("d", time.time() + 30)
        await replica.sync(time.time())
        await shared.refresh(board, 10.0, time.time())
        assert not await shared.publish_closed("d")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per outage
    assert "127.0.0.1:1" in warnings[0].getMessage()
    assert board.get("d").state(10.0) == "open"
    assert not board.available("d", 10.0)
    assert not board.available("e", 15.0)
    assert board.available("e", 20.0)
    await shared.close()


async def test_run_loop_shares_until_cancelled(
    replicas: tuple[Replica, Replica, RespClient],
) -> None:
    a, b, _ = replicas
    # Real clocks here: the loop reads time.monotonic() and time.time() itself.
    health = a.board.get("d")
    for _ in range(SETTINGS.failures):
        health.finished("failure", time.monotonic())
    tasks = [
        asyncio.create_task(a.shared.run(a.board, interval=0.02)),
        asyncio.create_task(b.shared.run(b.board, interval=0.02)),
    ]
    try:
        for _ in range(100):
            await asyncio.sleep(0.02)
            if b.board.peek("d") is not None:
                break
        assert b.board.get("d").state(time.monotonic()) == "open"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert all(task.cancelled() for task in tasks)

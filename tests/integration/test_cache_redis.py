"""The exact cache in a real Redis: entries shared by two gateways, expiry by Redis, and a
Redis that cannot be reached is a miss (logged once), never an error."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import pytest

from gatewise.cache.redis import RedisCacheStore
from gatewise.testing import FakeOpenAIUpstream
from tests.conftest import one_model_config, openai_provider
from tests.e2e.test_cli import free_port
from tests.rawhttp import Reply, post
from tests.redis_support import require_redis

Start = Any  # the start_gateway fixture


def config(upstream: FakeOpenAIUpstream, redis_url: str, prefix: str) -> dict[str, Any]:
    settings = one_model_config(openai_provider(upstream.url))
    settings["state"] = {"redis_url": redis_url, "key_prefix": prefix, "timeout_ms": 100}
    settings["cache"] = {"enabled": True, "backend": "redis"}
    return settings


def ask(url: str, content: str, **headers: str) -> Reply:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], "seed": 1}
    return post(url + "/v1/chat/completions", body, headers=headers)


async def test_the_store_keeps_entries_until_redis_expires_them() -> None:
    url = require_redis()
    store = RedisCacheStore(url, prefix=f"gwtest:{uuid.uuid4().hex}:")
    try:
        assert await store.get("k") is None
        store.put("k", b"\x00entry\xff", 0.2)
        store.put("long", b"kept", 60)
        await asyncio.sleep(0.05)  # writes go in the background
        assert await store.get("k") == b"\x00entry\xff"
        await asyncio.sleep(0.25)
        assert await store.get("k") is None
        assert await store.get("long") == b"kept"
    finally:
        await store.close()


async def test_an_unreachable_redis_is_a_miss_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gatewise")
    store = RedisCacheStore(
        f"redis://:hunter2secret@127.0.0.1:{free_port()}/0", timeout=0.1, retry_s=60
    )
    try:
        started = time.perf_counter()
        assert await store.get("k") is None
        store.put("k", b"v", 10)
        for _ in range(20):
            assert await store.get("k") is None
        assert time.perf_counter() - started < 1.0  # later calls do not wait for Redis
        assert not store.available
    finally:
        await store.close()
    warnings = [r.getMessage() for r in caplog.records if "response cache" in r.getMessage()]
    assert len(warnings) == 1 and "unavailable" in warnings[0]
    assert "hunter2secret" not in caplog.text


def test_two_gateways_share_entries_through_redis(
    start_gateway: Start, upstream: FakeOpenAIUpstream
) -> None:
    url = require_redis()
    prefix = f"gwtest:{uuid.uuid4().hex}:"
    one = start_gateway(config(upstream, url, prefix))
    two = start_gateway(config(upstream, url, prefix))
    content = f"shared {uuid.uuid4().hex}"
    first = ask(one.url, content)
    assert first.status == 200 and first.headers["x-gatewise-cache"] == "miss"
    deadline = time.monotonic() + 5
    while True:  # the entry is written in the background
        second = ask(two.url, content)
        if second.headers["x-gatewise-cache"] == "hit" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert second.status == 200 and second.headers["x-gatewise-cache"] == "hit"
    assert second.json["choices"] == first.json["choices"]
    assert len(upstream.requests) <= 2 and upstream.requests  # never more than the misses
    upstream_calls = len(upstream.requests)
    assert ask(one.url, content).headers["x-gatewise-cache"] == "hit"
    assert len(upstream.requests) == upstream_calls


def test_a_gateway_whose_redis_is_down_serves_every_call_as_a_miss(
    start_gateway: Start, upstream: FakeOpenAIUpstream
) -> None:
    gateway = start_gateway(config(upstream, f"redis://127.0.0.1:{free_port()}/0", "gw:"))
    started = time.perf_counter()
    replies = [ask(gateway.url, "same question") for _ in range(5)]
    assert [r.status for r in replies] == [200] * 5
    assert {r.headers["x-gatewise-cache"] for r in replies} == {"miss"}
    assert len(upstream.requests) == 5
    assert time.perf_counter() - started < 3.0

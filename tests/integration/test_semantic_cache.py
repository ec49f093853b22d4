"""The semantic cache with the real int8 MiniLM encoder, in memory and shared through
the real Redis (two caches stand for two workers): paraphrases hit, other questions
and other tenants miss, entries expire, and a worker that starts later sees what
the others stored.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from gatewise.cache.semantic import SemanticCache
from gatewise.cache.semantic_setup import build_cache
from gatewise.config.semantic_cache import SemanticCacheConfig
from gatewise.core.types import ChatResponse, Choice, ResponseMessage
from tests.redis_support import require_redis
from tests.semantic_cache_support import build_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory)


def reply(text: str) -> ChatResponse:
    return ChatResponse(
        id="chatcmpl-1", model="m", choices=[Choice(0, ResponseMessage(content=text), "stop")]
    )


def settings(model_dir: Path, **extra: object) -> SemanticCacheConfig:
    return SemanticCacheConfig.model_validate(
        {"enabled": True, "model_dir": str(model_dir), "threshold": 0.85, **extra}
    )


async def ask(cache: SemanticCache, tenant: str, text: str) -> str | None:
    partition = cache.partition(tenant, "m")
    found = await cache.lookup(partition, await cache.embed(text), ("", text))
    if found is None or found[0] is None:
        return None
    return found[0].choices[0].message.content


async def keep(cache: SemanticCache, tenant: str, text: str, answer: str) -> None:
    vector = await cache.embed(text)
    cache.store(cache.partition(tenant, "m"), vector, reply(answer), ("", text))


async def test_memory_mode_paraphrases_hit_other_questions_and_tenants_miss(
    model_dir: Path,
) -> None:
    cache = build_cache(settings(model_dir))
    try:
        await keep(cache, "t1", "How do I reset my password?", "Use the reset link.")
        assert await ask(cache, "t1", "I forgot my password, how can I change it?") == (
            "Use the reset link."
        )
        assert await ask(cache, "t1", "how do i reset my pasword") == "Use the reset link."
        assert await ask(cache, "t1", "How do I delete my account?") is None
        assert await ask(cache, "t2", "I forgot my password, how can I change it?") is None
        # the lexical guard: as close as a paraphrase by cosine, a different question
        trap = "How do I reset my colleague's password?"
        partition = cache.partition("t1", "m")
        found = await cache.lookup(partition, await cache.embed(trap), ("", trap))
        assert found is not None and found[0] is None  # a candidate, refused
    finally:
        await cache.close()


async def test_shared_scope_answers_every_tenant(model_dir: Path) -> None:
    cache = build_cache(settings(model_dir, scope="shared"))
    try:
        await keep(cache, "t1", "What is the capital of France?", "Paris.")
        assert await ask(cache, "t2", "what's the capital of France") == "Paris."
    finally:
        await cache.close()


async def test_entries_expire(model_dir: Path) -> None:
    cache = build_cache(settings(model_dir, ttl_s=0.2))
    try:
        await keep(cache, "t", "What is the capital of France?", "Paris.")
        assert await ask(cache, "t", "What is the capital of France?") == "Paris."
        await asyncio.sleep(0.3)
        assert await ask(cache, "t", "What is the capital of France?") is None
    finally:
        await cache.close()


async def test_redis_mode_shares_entries_between_workers(model_dir: Path) -> None:
    url = require_redis()
    prefix = f"gw:sc-test:{os.urandom(4).hex()}:"
    shared = settings(
        model_dir, backend="redis", redis_url=url, key_prefix=prefix, sync_interval_s=0.05
    )
    one, two = build_cache(shared), build_cache(shared)
    one.start()
    two.start()
    late: SemanticCache | None = None
    try:
        await keep(one, "t1", "How do I reset my password?", "Use the reset link.")
        assert await ask(one, "t1", "How do I reset my password?") == "Use the reset link."
        for _ in range(100):  # the other worker reads the stream every 50 ms
            if await ask(two, "t1", "I forgot my password, how can I change it?") is not None:
                break
            await asyncio.sleep(0.02)
        assert await ask(two, "t1", "I forgot my password, how can I change it?") == (
            "Use the reset link."
        )
        assert await ask(two, "t2", "I forgot my password, how can I change it?") is None
        # the question travels with the entry: the other worker's guard refuses a trap
        assert await ask(two, "t1", "How do I reset my colleague's password?") is None

        late = build_cache(shared)  # a worker started later reads the stream from its start
        assert late.shared is not None
        assert await late.shared.sync() >= 1  # type: ignore[attr-defined]
        assert await ask(late, "t1", "How can I reset my password?") == "Use the reset link."

        # The reply lives in Redis: once it is gone there, the mirrored row is a miss.
        await one.shared.client.call("DEL", *await keys(one, prefix + "r:*"))  # type: ignore[union-attr]
        assert await ask(two, "t1", "I forgot my password, how can I change it?") is None
    finally:
        for cache in (one, two, late):
            if cache is not None:
                await cache.close()
        await cleanup(url, prefix)


async def keys(cache: SemanticCache, pattern: str) -> list[bytes]:
    found = await cache.shared.client.call("KEYS", pattern)  # type: ignore[union-attr]
    assert isinstance(found, list) and found
    return [k for k in found if isinstance(k, bytes)]


async def cleanup(url: str, prefix: str) -> None:
    from gatewise.state.resp import Address, RespClient

    client = RespClient(Address.from_url(url), timeout=1)
    try:
        found = await client.call("KEYS", prefix + "*")
        if isinstance(found, list) and found:
            await client.call("DEL", *[k for k in found if isinstance(k, bytes)])
    finally:
        await client.close()

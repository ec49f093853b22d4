"""The exact cache's parts: the key (what changes it and what does not), the memory store
(bytes bound, LRU, TTL on a fake clock), entries, stream assembly and the config."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest
from pydantic import ValidationError

from gatewise.cache.entry import REPLY, STREAM, decode, encode_batch, encode_reply, encode_stream
from gatewise.cache.keys import deterministic, request_key, scope_of
from gatewise.cache.memory import ENTRY_OVERHEAD, MemoryCacheStore
from gatewise.cache.replay import StoredStream, assemble
from gatewise.config.cache import CacheConfig
from gatewise.config.models import Config
from gatewise.core.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ChunkChoice,
    Delta,
    EmbeddingRequest,
    FunctionCall,
    ToolCallDelta,
    Usage,
)
from gatewise.formats.openai import parse_chat_request

BASE: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "temperature": 0,
    "max_tokens": 20,
}


def key(body: dict[str, Any], scope: str = "t:acme", model: str = "gpt-4o-mini") -> str:
    return request_key(scope, model, parse_chat_request(body))


# --- the key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"stream": True},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"user": "someone-else"},
        {"metadata": {"trace": "x"}},
        {"store": True},
        {"service_tier": "flex"},
        {"temperature": 0.0},  # 0 and 0.0 are one temperature
    ],
)
def test_what_does_not_change_the_answer_does_not_change_the_key(change: dict[str, Any]) -> None:
    assert key({**BASE, **change}) == key(BASE)


def test_json_key_order_and_cache_control_marks_do_not_change_the_key() -> None:
    parts = [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]
    marked = {**BASE, "messages": [BASE["messages"][0], {"role": "user", "content": parts}]}
    plain = {**BASE, "messages": [BASE["messages"][0], {"role": "user", "content": parts}]}
    plain["messages"][1] = {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
    assert key(marked) == key(plain)
    a = {**BASE, "response_format": {"type": "json_schema", "json_schema": {"a": 1, "b": 2}}}
    b = {**BASE, "response_format": {"json_schema": {"b": 2, "a": 1}, "type": "json_schema"}}
    assert key(a) == key(b)
    reordered = dict(reversed(list(BASE.items())))
    assert key(reordered) == key(BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"messages": [{"role": "user", "content": "Hi"}]},
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi!"},
            ]
        },
        {"temperature": 0.5},
        {"max_tokens": 21},
        {"top_p": 0.5},
        {"seed": 7},
        {"stop": ["\n"]},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"tool_choice": "none"},
        {"response_format": {"type": "json_object"}},
        {"logit_bias": {"50256": -100}},  # a vendor field the canonical type keeps in extra
        {"reasoning_effort": "high"},
    ],
)
def test_what_changes_the_answer_changes_the_key(change: dict[str, Any]) -> None:
    assert key({**BASE, **change}) != key(BASE)


def test_the_scope_and_the_model_are_in_the_key() -> None:
    assert key(BASE, scope="t:acme") != key(BASE, scope="t:other")
    assert key(BASE, scope="t:acme") != key(BASE, scope="shared")
    assert key(BASE, model="gpt-4o") != key(BASE)
    assert key(BASE).startswith("t:acme:chat:")
    embedding = request_key("t:acme", "e", EmbeddingRequest(model="e", input="Hi"))
    assert embedding.startswith("t:acme:emb:")


def test_scopes() -> None:
    assert scope_of("tenant-1", "app-1", shared=False) == "t:tenant-1"
    assert scope_of(None, "app-1", shared=False) == "o:app-1"  # a caller without a tenant
    assert scope_of(None, None, shared=False) == "anonymous"
    assert scope_of("tenant-1", "app-1", shared=True) == "shared"


def test_only_reproducible_requests_are_deterministic() -> None:
    def chat(**fields: Any) -> ChatRequest:
        return parse_chat_request(
            {"model": "m", "messages": [{"role": "user", "content": "x"}], **fields}
        )

    assert deterministic(chat(temperature=0))
    assert deterministic(chat(seed=1))
    assert deterministic(chat(temperature=0, n=1))
    assert not deterministic(chat())  # temperature 1 by default
    assert not deterministic(chat(temperature=0.7))
    assert not deterministic(chat(temperature=0, n=2))
    assert deterministic(EmbeddingRequest(model="e", input="x"))


# --- the memory store ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def entry_size(key: str, data: bytes) -> int:
    return len(key) + len(data) + ENTRY_OVERHEAD


def test_memory_store_is_bounded_by_bytes_and_drops_the_least_recently_used() -> None:
    data = b"x" * 1000
    size = entry_size("k0", data)
    store = MemoryCacheStore(3 * size, clock=Clock())
    for index in range(3):
        store.put(f"k{index}", data, 60)
    assert len(store) == 3 and store.bytes == 3 * size
    assert store.get_now("k0") == data  # k0 is now the most recently used
    store.put("k3", data, 60)
    assert store.get_now("k1") is None  # the least recently used went
    assert store.get_now("k0") == data and store.get_now("k3") == data
    assert store.bytes <= store.max_bytes
    store.put("huge", b"y" * (4 * size), 60)  # larger than the whole store: not kept
    assert store.get_now("huge") is None and len(store) == 3
    store.resize(size)
    assert len(store) == 1 and store.bytes == size
    store.put("k3", b"z" * 10, 60)  # replacing an entry frees its old bytes
    assert store.bytes == entry_size("k3", b"z" * 10)


def test_memory_store_entries_expire() -> None:
    clock = Clock()
    store = MemoryCacheStore(1 << 20, clock=clock)
    store.put("a", b"1", 10)
    store.put("b", b"2", 100)
    clock.now += 9.9
    assert store.get_now("a") == b"1"
    clock.now += 0.1
    assert store.get_now("a") is None  # at its expiry: gone, and its bytes freed
    assert store.bytes == entry_size("b", b"2")
    assert asyncio.run(store.get("b")) == b"2"


# --- entries and replay ----------------------------------------------------------------------


def chunk(content: str | None = None, finish: str | None = None, **delta: Any) -> ChatChunk:
    choice = ChunkChoice(0, Delta(content=content, **delta), finish)
    return ChatChunk("chatcmpl-1", created=1, model="m", choices=[choice])


def test_a_reply_entry_decodes_to_an_equal_new_reply() -> None:
    reply = msgspec.json.decode(
        b'{"id":"c","model":"m","choices":[{"index":0,"message":{"role":"assistant",'
        b'"content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,'
        b'"completion_tokens":1,"total_tokens":4}}',
        type=ChatResponse,
    )
    entry = decode(encode_reply(reply))
    assert entry is not None and entry.kind == REPLY
    assert entry.reply == reply and entry.reply is not reply
    assert decode(b"not an entry") is None


def test_a_stream_entry_keeps_its_batches_and_assembles_into_one_reply() -> None:
    tool = ToolCallDelta(index=0, id="call_1", type="function", function=FunctionCall("f", '{"a"'))
    more = ToolCallDelta(index=0, function=FunctionCall(None, ":1}"))
    batches = [
        [chunk("", role="assistant"), chunk("Hel")],
        [chunk("lo", reasoning_content="think"), chunk(tool_calls=[tool])],
        [chunk(tool_calls=[more]), chunk(finish="tool_calls")],
    ]
    final = ChatChunk("chatcmpl-1", created=1, model="m")
    final.usage = Usage(prompt_tokens=5, completion_tokens=7, total_tokens=12)
    batches[-1].append(final)
    data = encode_stream([encode_batch(b) for b in batches], [0.01, 0.02, 0.03])
    entry = decode(data)
    assert entry is not None and entry.kind == STREAM
    assert entry.batches == batches and entry.offsets == [0.01, 0.02, 0.03]
    reply = assemble(entry.batches)
    message = reply.choices[0].message
    assert (reply.id, reply.model, reply.choices[0].finish_reason) == (
        "chatcmpl-1",
        "m",
        "tool_calls",
    )
    assert message.content == "Hello" and message.reasoning_content == "think"
    assert message.tool_calls is not None
    assert message.tool_calls[0].function == FunctionCall("f", '{"a":1}')
    assert message.tool_calls[0].id == "call_1"
    assert reply.usage is not None and reply.usage.total_tokens == 12


def test_a_stored_stream_replays_its_batches_with_or_without_their_pacing() -> None:
    batches = [[chunk("a")], [chunk("b")], [chunk(finish="stop")]]

    async def replay(offsets: list[float] | None) -> tuple[list[list[ChatChunk]], float]:
        started = time.perf_counter()
        got = [batch.chunks async for batch in StoredStream(batches, offsets, started)]
        return got, time.perf_counter() - started

    fast, fast_took = asyncio.run(replay(None))
    paced, paced_took = asyncio.run(replay([0.0, 0.1, 0.2]))
    assert fast == batches and paced == batches
    assert fast_took < 0.05
    assert paced_took >= 0.2


# --- the config -----------------------------------------------------------------------------


def test_per_model_rules_override_the_section() -> None:
    cache = CacheConfig(
        enabled=True,
        ttl_s=60,
        models=[{"name": "gpt-4o*", "ttl_s": 5}, {"name": "o3", "enabled": False}],  # type: ignore[list-item]
    )
    assert cache.rule("gpt-4o-mini") == (True, 5, True)
    assert cache.rule("o3") == (False, 60, True)
    assert cache.rule("other") == (True, 60, True)
    assert CacheConfig().rule("gpt-4o") == (False, 3600, True)  # off by default


def models(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "deployments": [{"provider": "mock", "model": n}]} for n in names]


def test_bad_cache_configs_are_refused_with_exact_messages() -> None:
    base = {"providers": {"mock": {"type": "mock"}}, "models": models("a")}
    with pytest.raises(ValidationError, match=r"cache.backend: redis needs state.redis_url"):
        Config.model_validate({**base, "cache": {"enabled": True, "backend": "redis"}})
    with pytest.raises(ValidationError, match=r"cache.models\[0\].name: 'b\*' matches no"):
        Config.model_validate({**base, "cache": {"models": [{"name": "b*"}]}})
    with pytest.raises(ValidationError, match="scope"):
        Config.model_validate({**base, "cache": {"scope": "global"}})
    with pytest.raises(ValidationError, match="ttl_s"):
        Config.model_validate({**base, "cache": {"ttl_s": 0}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        Config.model_validate({**base, "cache": {"enable": True}})

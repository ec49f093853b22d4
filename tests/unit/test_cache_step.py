"""The exact cache's step in a real corridor: what is kept (complete replies and streams),
what never is (errors, cut, abandoned or unfinished streams), and a hit's story (the steps
before the cache still see the answer; it costs 0)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gatewise.cache.memory import MemoryCacheStore
from gatewise.cache.step import CacheStep
from gatewise.config.cache import CacheConfig
from gatewise.core.errors import UpstreamProtocolError, UpstreamUnavailableError
from gatewise.core.types import ChatChunk, ChatRequest, ChunkBatch, ChunkChoice, Delta, Usage
from gatewise.corridor.chain import Corridor
from gatewise.corridor.step import Step
from tests.corridor_doubles import (
    After,
    Journal,
    ScriptedProvider,
    Stream,
    catalog,
    chat_request,
    context,
    principal,
)


class FinishedStream(Stream):
    """Three text chunks, a finish reason, then usage; or cut after the first batch."""

    async def _batches(self) -> AsyncIterator[ChunkBatch]:
        for text in ("four ", "words ", "of reply"):
            yield ChunkBatch([ChatChunk(choices=[ChunkChoice(0, Delta(content=text))])])
            if self.error is not None:
                raise self.error
        yield ChunkBatch([ChatChunk(choices=[ChunkChoice(0, Delta(), "stop")])])
        usage = Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)
        yield ChunkBatch([ChatChunk(choices=[], usage=usage)])


class Streaming(ScriptedProvider):
    finished = True

    async def chat_stream(self, request, model, native=None):  # type: ignore[no-untyped-def]
        self._next(model, native)
        kind = FinishedStream if self.finished else Stream
        return kind(self.usage, self.stream_error)


def deterministic(stream: bool = False) -> ChatRequest:
    request = chat_request(stream=stream)
    request.temperature = 0
    return request


def corridor(provider: ScriptedProvider, *before: Step) -> tuple[Corridor, MemoryCacheStore]:
    store = MemoryCacheStore(1 << 20)
    step = CacheStep(CacheConfig(enabled=True), store)
    return Corridor(catalog(provider), [*before, step]), store


async def chat(corridor: Corridor, request: ChatRequest) -> tuple[str, str | None, int | None]:
    ctx = context()
    response = await corridor.chat(corridor.open(ctx, principal(), request))
    return response.choices[0].message.content or "", ctx.cache, ctx.cost_micros


async def stream(corridor: Corridor, request: ChatRequest, *, cut: bool = False) -> str:
    ctx = context()
    opened = await corridor.chat_stream(corridor.open(ctx, principal(), request))
    text = ""
    try:
        async for batch in opened:
            for chunk in batch.chunks:
                for choice in chunk.choices:
                    text += choice.delta.content or ""
            if cut:
                break
    finally:
        await opened.aclose()
    return text


async def test_a_second_identical_call_is_a_hit_that_costs_nothing() -> None:
    provider = ScriptedProvider("p")
    chain, store = corridor(provider)
    assert await chat(chain, deterministic()) == ("four words of reply", "miss", None)
    assert await chat(chain, deterministic()) == ("four words of reply", "hit", 0)
    assert len(provider.calls) == 1 and len(store) == 1


async def test_steps_before_the_cache_see_a_hit_and_the_entry_is_never_changed_by_them() -> None:
    provider = ScriptedProvider("p")
    chain, _store = corridor(provider, After("guard", Journal()))
    assert (await chat(chain, deterministic()))[0] == "FOUR WORDS OF REPLY"
    # The entry holds the upstream's reply: the guard upper-cases it again, once.
    assert await chat(chain, deterministic()) == ("FOUR WORDS OF REPLY", "hit", 0)
    assert len(provider.calls) == 1


async def test_errors_are_never_kept() -> None:
    provider = ScriptedProvider("p", outcomes=[UpstreamUnavailableError("down")])
    chain, store = corridor(provider)
    with pytest.raises(UpstreamUnavailableError):
        await chat(chain, deterministic())
    assert len(store) == 0
    assert (await chat(chain, deterministic()))[1] == "miss"
    assert len(provider.calls) == 2


async def test_a_complete_stream_is_kept_and_replayed_to_streams_and_plain_calls() -> None:
    provider = Streaming("p")
    chain, store = corridor(provider)
    assert await stream(chain, deterministic(stream=True)) == "four words of reply"
    assert len(store) == 1
    assert await stream(chain, deterministic(stream=True)) == "four words of reply"
    assert await chat(chain, deterministic()) == ("four words of reply", "hit", 0)
    assert len(provider.calls) == 1


async def test_cut_abandoned_and_unfinished_streams_are_never_kept() -> None:
    cut = Streaming("p", stream_error=UpstreamProtocolError("cut"))
    chain, store = corridor(cut)
    with pytest.raises(UpstreamProtocolError):
        await stream(chain, deterministic(stream=True))
    assert len(store) == 0

    chain, store = corridor(Streaming("p"))
    assert await stream(chain, deterministic(stream=True), cut=True) == "four "  # client left
    assert len(store) == 0

    unfinished = Streaming("p")
    unfinished.finished = False  # ends without a finish reason
    chain, store = corridor(unfinished)
    assert await stream(chain, deterministic(stream=True)) == "four words of reply"
    assert len(store) == 0


async def test_non_deterministic_calls_are_neither_looked_up_nor_kept() -> None:
    provider = ScriptedProvider("p")
    chain, store = corridor(provider)
    assert (await chat(chain, chat_request()))[1] is None
    assert (await chat(chain, chat_request()))[1] is None
    assert len(provider.calls) == 2 and len(store) == 0

"""Usage in the corridor: the upstream's figures, or an estimate marked as such."""

from __future__ import annotations

from collections.abc import AsyncIterator

from gatewise.core.context import RequestContext
from gatewise.core.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkBatch,
    ChunkChoice,
    Delta,
    Message,
    ModelCard,
    NativeBody,
    ResponseMessage,
    Usage,
)
from gatewise.corridor.chain import Corridor
from gatewise.routing.catalog import ModelCatalog, Route, Target


class ScriptedProvider:
    """Answers with fixed responses/chunks, with or without usage (a unit-test double)."""

    name = kind = "scripted"

    def __init__(self, usage: Usage | None) -> None:
        self.usage = usage

    async def chat(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> ChatResponse:
        choice = Choice(0, ResponseMessage(content="four words of reply"), "stop")
        return ChatResponse(id="x", created=1, model=model, choices=[choice], usage=self.usage)

    async def chat_stream(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> Stream:
        return Stream(self.usage)


class Stream:
    def __init__(self, usage: Usage | None) -> None:
        self.usage = usage

    def __aiter__(self) -> AsyncIterator[ChunkBatch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[ChunkBatch]:
        for text in ("four ", "words ", "of reply"):
            yield ChunkBatch([ChatChunk(choices=[ChunkChoice(0, Delta(content=text))])])
        if self.usage is not None:
            yield ChunkBatch([ChatChunk(choices=[], usage=self.usage)])

    async def aclose(self) -> None:
        return None


def corridor(usage: Usage | None) -> Corridor:
    provider = ScriptedProvider(usage)
    card = ModelCard(id="m", created=0, owned_by="t")
    return Corridor(ModelCatalog([Route("m", (Target(provider, "m"),), card)]))  # type: ignore[arg-type]


REQUEST = ChatRequest(
    model="m", messages=[Message(role="user", content="How many tokens is this?")]
)
REPORTED = Usage(prompt_tokens=11, completion_tokens=4, total_tokens=15)


async def test_reported_usage_is_kept() -> None:
    ctx = RequestContext(request_id="r")
    chain = corridor(REPORTED)
    await chain.chat(chain.open(ctx, None, REQUEST))
    assert ctx.usage == REPORTED and not ctx.usage_estimated
    ctx = RequestContext(request_id="r")
    stream = await chain.chat_stream(chain.open(ctx, None, REQUEST))
    batches = [batch async for batch in stream]
    assert len(batches) == 4 and ctx.usage == REPORTED and not ctx.usage_estimated


async def test_missing_usage_is_estimated_and_marked() -> None:
    ctx = RequestContext(request_id="r")
    chain = corridor(None)
    await chain.chat(chain.open(ctx, None, REQUEST))
    assert ctx.usage_estimated and ctx.usage is not None
    assert ctx.usage.prompt_tokens > 5 and ctx.usage.completion_tokens >= 3
    streamed = RequestContext(request_id="r")
    stream = await chain.chat_stream(chain.open(streamed, None, REQUEST))
    [batch async for batch in stream]
    assert streamed.usage_estimated and streamed.usage is not None
    assert streamed.usage.completion_tokens == ctx.usage.completion_tokens  # same text

"""A complete reply played back as a stream: for a streamed call a step answered itself.

A cache hit or a block answers a streamed request with one batch: the role,
the reasoning, content and tool calls, the finish reason (and the stop string
that ended the reply) and the usage, as an upstream's stream would carry them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

import msgspec

from gatewise.core.types import (
    ChatChunk,
    ChatResponse,
    ChunkBatch,
    ChunkChoice,
    Delta,
    FunctionCall,
    ToolCallDelta,
)
from gatewise.providers.base import ChunkStream

T = TypeVar("T")


def chunks_of(response: ChatResponse) -> list[ChatChunk]:
    chunks: list[ChatChunk] = []

    def chunk(choices: list[ChunkChoice]) -> ChatChunk:
        return ChatChunk(
            response.id, created=response.created, model=response.model, choices=choices
        )

    for choice in response.choices:
        message = choice.message
        calls = [
            ToolCallDelta(
                index=i,
                id=call.id,
                type=call.type,
                function=FunctionCall(call.function.name, call.function.arguments),
            )
            for i, call in enumerate(message.tool_calls or ())
        ]
        delta = Delta(
            role="assistant",
            content=message.content,
            refusal=message.refusal,
            tool_calls=calls or None,
            reasoning_content=_given(message.reasoning_content),
            thinking_blocks=_given(message.thinking_blocks),
        )
        chunks.append(chunk([ChunkChoice(choice.index, delta)]))
        finish = ChunkChoice(choice.index, Delta(), choice.finish_reason or "stop")
        finish.stop_sequence = choice.stop_sequence
        chunks.append(chunk([finish]))
    if response.usage is not None:
        final = chunk([])
        final.usage = response.usage
        chunks.append(final)
    return chunks


def _given(value: T | msgspec.UnsetType | None) -> T | None:
    return None if isinstance(value, msgspec.UnsetType) else value


def stream_as(response: ChatResponse, stream: ChunkStream) -> ChatResponse:
    """``response`` (a step's answer to a call), streamed as ``stream``'s batches rather
    than in one batch: a cached stream replays as it first came."""
    response.replay = stream  # type: ignore[attr-defined]
    return response


class ReplayStream:
    """A ``ChunkStream`` of one batch: ``response`` as chunks (or the stream a step gave
    it with ``stream_as``)."""

    def __init__(self, response: ChatResponse) -> None:
        self._response = response
        self._own: ChunkStream | None = response.__dict__.get("replay")

    def __aiter__(self) -> AsyncIterator[ChunkBatch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[ChunkBatch]:
        own = self._own
        if own is not None:
            async for batch in own:
                yield batch
            return
        yield ChunkBatch(chunks_of(self._response))

    async def aclose(self) -> None:
        if self._own is not None:
            await self._own.aclose()

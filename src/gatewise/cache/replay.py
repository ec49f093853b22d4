"""A cached stream, replayed: as a stream (its batches as they first came, with their
pacing when ``keep_pacing`` is on), or assembled into one reply for a plain call.

The front door writes the replayed chunks in its own wire format, as it writes an
upstream's, so a stream stored through one door replays as a valid stream through
another.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import msgspec

from gatewise.core.types import (
    ChatChunk,
    ChatResponse,
    Choice,
    ChunkBatch,
    Delta,
    FunctionCall,
    ResponseMessage,
    ToolCall,
)


class StoredStream:
    """A ``ChunkStream`` of stored batches; ``started`` (``time.perf_counter``) is when
    the request began, from which ``offsets`` count when pacing is kept."""

    def __init__(
        self,
        batches: list[list[ChatChunk]],
        offsets: list[float] | None = None,
        started: float = 0.0,
    ) -> None:
        self._batches = batches
        self._offsets = offsets
        self._started = started

    def __aiter__(self) -> AsyncIterator[ChunkBatch]:
        return self._replay()

    async def _replay(self) -> AsyncIterator[ChunkBatch]:
        offsets = self._offsets
        for index, chunks in enumerate(self._batches):
            if offsets is not None and index < len(offsets):
                wait = offsets[index] - (time.perf_counter() - self._started)
                if wait > 0:
                    await asyncio.sleep(wait)
            yield ChunkBatch(chunks)

    async def aclose(self) -> None:
        return None


class _Building:
    __slots__ = ("content", "finish", "reasoning", "refusal", "stop", "thinking", "tools")

    def __init__(self) -> None:
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.thinking: list[dict[str, object]] = []
        self.tools: dict[int, list[str]] = {}  # index: [id, type, name, arguments...]
        self.finish: str | None = None
        self.stop: str | msgspec.UnsetType | None = msgspec.UNSET


def assemble(batches: list[list[ChatChunk]]) -> ChatResponse:
    """One reply from a stream's chunks: texts joined, tool calls merged by index."""
    choices: dict[int, _Building] = {}
    response = ChatResponse(choices=[])
    first = True
    for chunks in batches:
        for chunk in chunks:
            if first:
                response.id, response.created, response.model = chunk.id, chunk.created, chunk.model
                first = False
            if chunk.usage is not None:
                response.usage = chunk.usage
            for choice in chunk.choices:
                building = choices.get(choice.index)
                if building is None:
                    building = choices[choice.index] = _Building()
                _add(building, choice.delta)
                if choice.finish_reason is not None:
                    building.finish = choice.finish_reason
                if not isinstance(choice.stop_sequence, msgspec.UnsetType):
                    building.stop = choice.stop_sequence
    response.choices = [_choice(index, choices[index]) for index in sorted(choices)]
    return response


def _add(building: _Building, delta: Delta) -> None:
    if delta.content:
        building.content.append(delta.content)
    if delta.refusal:
        building.refusal.append(delta.refusal)
    if delta.reasoning_content:
        building.reasoning.append(delta.reasoning_content)
    if delta.thinking_blocks:
        building.thinking.extend(delta.thinking_blocks)
    for tool in delta.tool_calls or ():
        parts = building.tools.get(tool.index)
        if parts is None:
            parts = building.tools[tool.index] = ["", "function", "", ""]
        if tool.id:
            parts[0] = tool.id
        if tool.type:
            parts[1] = tool.type
        function = tool.function
        if function is not None:
            if function.name:
                parts[2] += function.name
            if function.arguments:
                parts[3] += function.arguments


def _choice(index: int, building: _Building) -> Choice:
    tools = [
        ToolCall(id=parts[0], type=parts[1], function=FunctionCall(parts[2], parts[3]))
        for _i, parts in sorted(building.tools.items())
    ]
    message = ResponseMessage(
        content="".join(building.content) if building.content or not tools else None,
        refusal="".join(building.refusal) or None,
        tool_calls=tools or None,
    )
    if building.reasoning:
        message.reasoning_content = "".join(building.reasoning)
    if building.thinking:
        message.thinking_blocks = building.thinking
    return Choice(index, message, building.finish, stop_sequence=building.stop)

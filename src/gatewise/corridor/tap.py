"""The stream tap: the one wrapper around a call's stream.

It passes every batch through the steps that watch streams, records the
upstream's usage (the final usage chunk wins; a stream that ends without one
gets the gateway's estimate from the text that went through), and ends the
call exactly once however the stream ends: read to the end, failed, cut by
the client (``aclose`` comes first then), or never read. Ending the call
closes its attempt for the observers and runs the steps' ``finish`` hooks.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from gatewise.core.context import Attempt
from gatewise.core.types import ChatChunk, ChunkBatch
from gatewise.corridor.call import Call
from gatewise.corridor.usage import estimated_usage
from gatewise.providers.base import ChunkStream

if TYPE_CHECKING:
    from gatewise.corridor.step import Step

#: Ends the call: (call, the stream's attempt or None, the error that ended it or None);
#: returns what the stream's last bytes must wait for, if anything (see ``Step.finish``).
EndCall = Callable[[Call, Attempt | None, BaseException | None], Awaitable[None] | None]


class StreamTap:
    __slots__ = (
        "_attempt",
        "_batches_of",
        "_call",
        "_end",
        "_error",
        "_inner",
        "_pieces",
        "_steps",
    )

    def __init__(
        self,
        call: Call,
        inner: ChunkStream,
        attempt: Attempt | None,
        steps: tuple[Step, ...],
        end: EndCall,
    ) -> None:
        self._call = call
        self._inner = inner
        self._attempt = attempt
        self._steps = steps  # those watching streams, in the order they see chunks
        self._end: EndCall | None = end
        self._error: BaseException | None = None
        self._pieces: list[str] = []  # the text that went through, for an estimate
        self._batches_of: AsyncGenerator[ChunkBatch, None] | None = None

    def __aiter__(self) -> AsyncIterator[ChunkBatch]:
        self._batches_of = self._batches()
        return self._batches_of

    async def _batches(self) -> AsyncGenerator[ChunkBatch, None]:
        call = self._call
        ctx = call.ctx
        pieces = self._pieces
        steps = self._steps
        try:
            async for batch in self._inner:
                for chunk in batch.chunks:
                    if chunk.usage is not None:
                        ctx.usage = chunk.usage
                    for choice in chunk.choices:
                        if choice.finish_reason is not None:  # (for the spans)
                            if ctx.finish_reasons is None:
                                ctx.finish_reasons = []
                            ctx.finish_reasons.append(choice.finish_reason)
                            ctx.response_model = chunk.model or None
                        delta = choice.delta
                        if delta.content:
                            pieces.append(delta.content)
                        if delta.tool_calls:
                            pieces.extend(
                                (tool.function.name or "") + (tool.function.arguments or "")
                                for tool in delta.tool_calls
                                if tool.function is not None
                            )
                if steps:
                    if not batch.chunks:
                        continue  # nothing canonical (an Anthropic ping): nothing to watch or send
                    batch = ChunkBatch(await self._watch(batch.chunks))
                yield batch
            if steps:
                tail: list[ChatChunk] = []
                for step in steps:
                    tail = await step.on_chunks(call, tail) if tail else tail
                    tail += await step.on_stream_end(call)
                if tail:
                    yield ChunkBatch(tail)
        except BaseException as error:
            self._error = error
            raise
        finally:
            ending = self._done()
            if ending is not None:
                await ending  # before the front door writes the stream's end

    async def _watch(self, chunks: list[ChatChunk]) -> list[ChatChunk]:
        call = self._call
        for step in self._steps:
            chunks = await step.on_chunks(call, chunks)
        return chunks

    def _done(self) -> Awaitable[None] | None:
        end, self._end = self._end, None
        if end is None:
            return None
        call = self._call
        ctx = call.ctx
        if ctx.usage is None:
            ctx.usage = estimated_usage(call, "".join(self._pieces))
            ctx.usage_estimated = True
        return end(call, self._attempt, self._error)

    async def aclose(self) -> None:
        if self._end is not None and self._error is None:
            self._error = GeneratorExit()  # closed before its end: the client left
        try:
            if self._batches_of is not None:
                await self._batches_of.aclose()  # a suspended generator: its finally runs now
            await self._inner.aclose()
        finally:
            ending = self._done()  # a stream closed before it was read still ends its call
            if ending is not None:
                await ending

"""Anthropic Messages SSE events -> canonical chat chunks.

``StreamTranslator`` is pure (events in, chunks out) so it is tested without
sockets; ``AnthropicChunkStream`` feeds it from the upstream connection and yields
one ``ChunkBatch`` per read.

- ``message_start`` -> a role chunk; input and cache token counts are remembered.
- ``content_block_start`` ``tool_use`` -> a tool-call delta (id, name) whose
  ``index`` counts tool blocks in this message, not Anthropic's block index.
- ``text_delta`` -> ``content``; ``input_json_delta`` -> an arguments fragment.
- ``message_delta`` -> the finish chunk; ``message_stop`` -> a usage-only chunk
  (``choices: []``), which feeds accounting and ``include_usage``.
- ``ping`` and unknown events are skipped; ``error`` raises the mapped error.
- Thinking (``thinking_delta``, ``signature_delta``), citations and server-tool
  blocks are dropped: OpenAI's chat chunks have no field for them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import msgspec

from gatewise.core.errors import GatewayError, UpstreamProtocolError
from gatewise.core.types import (
    ChatChunk,
    ChunkBatch,
    ChunkChoice,
    Delta,
    FunctionCall,
    ToolCallDelta,
)
from gatewise.net.http1 import Response
from gatewise.providers.anthropic_response import (
    AnthropicUsage,
    ContentBlock,
    canonical_usage,
    error_from_event,
    finish_reason,
)
from gatewise.providers.sse import SSEDecoder
from gatewise.providers.transport import HTTPTransport, Redactor


class _Kind(msgspec.Struct, gc=False):
    type: str = ""


class _StartMessage(msgspec.Struct, gc=False):
    id: str = ""
    model: str = ""
    usage: AnthropicUsage | None = None


class _MessageStart(msgspec.Struct, gc=False):
    message: _StartMessage


class _BlockStart(msgspec.Struct, gc=False):
    index: int
    content_block: ContentBlock


class _BlockDeltaBody(msgspec.Struct, gc=False):
    type: str
    text: str | None = None
    partial_json: str | None = None


class _BlockDelta(msgspec.Struct, gc=False):
    index: int
    delta: _BlockDeltaBody


class _StopDelta(msgspec.Struct, gc=False):
    stop_reason: str | None = None


class _MessageDelta(msgspec.Struct, gc=False):
    delta: _StopDelta
    usage: AnthropicUsage | None = None


_kind = msgspec.json.Decoder(_Kind).decode
_message_start = msgspec.json.Decoder(_MessageStart).decode
_block_start = msgspec.json.Decoder(_BlockStart).decode
_block_delta = msgspec.json.Decoder(_BlockDelta).decode
_message_delta = msgspec.json.Decoder(_MessageDelta).decode


class StreamTranslator:
    """The state of one streamed message: ids, tool block numbering, usage so far."""

    __slots__ = ("created", "done", "id", "model", "redact", "tools", "usage")

    def __init__(self, redact: Redactor, created: int | None = None) -> None:
        self.redact = redact
        self.created = int(time.time()) if created is None else created
        self.id = ""
        self.model = ""
        self.tools: dict[int, int] = {}  # Anthropic block index -> tool call index
        self.usage = AnthropicUsage()
        self.done = False

    def feed(self, event: str | None, data: bytes, out: list[ChatChunk]) -> bool:
        """Translate one event, appending its chunks to ``out``; True once the message ended."""
        try:
            if event is None:
                event = _kind(data).type
            if event == "content_block_delta":
                self._block_delta(_block_delta(data), out)
            elif event == "content_block_start":
                self._block_start(_block_start(data), out)
            elif event == "message_start":
                self._message_start(_message_start(data), out)
            elif event == "message_delta":
                self._message_delta(_message_delta(data), out)
            elif event == "message_stop":
                self.done = True
                usage = canonical_usage(self.usage)
                out.append(ChatChunk(self.id, created=self.created, model=self.model, usage=usage))
            elif event == "error":
                raise error_from_event(data, self.redact)
            # ping, content_block_stop and event types added later: nothing to say
            return self.done
        except (msgspec.ValidationError, msgspec.DecodeError):
            raise UpstreamProtocolError(
                f"The upstream sent a stream event ({event}) that is not valid Anthropic JSON."
            ) from None

    def _delta(self, delta: Delta, finish: str | None = None) -> ChatChunk:
        return ChatChunk(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish)],
        )

    def _message_start(self, event: _MessageStart, out: list[ChatChunk]) -> None:
        message = event.message
        self.id, self.model = message.id, message.model
        if message.usage is not None:
            self._merge_usage(message.usage)
        out.append(self._delta(Delta(role="assistant", content="")))

    def _block_start(self, event: _BlockStart, out: list[ChatChunk]) -> None:
        block = event.content_block
        if block.type == "text":
            if block.text:
                out.append(self._delta(Delta(content=block.text)))
        elif block.type == "tool_use":
            index = self.tools[event.index] = len(self.tools)
            call = ToolCallDelta(
                index=index,
                id=block.id,
                type="function",
                function=FunctionCall(name=block.name, arguments=""),
            )
            out.append(self._delta(Delta(tool_calls=[call])))

    def _block_delta(self, event: _BlockDelta, out: list[ChatChunk]) -> None:
        delta = event.delta
        if delta.type == "text_delta":
            if delta.text:
                out.append(self._delta(Delta(content=delta.text)))
        elif delta.type == "input_json_delta":
            index = self.tools.get(event.index)
            if index is not None and delta.partial_json:
                fragment = FunctionCall(arguments=delta.partial_json)
                call = ToolCallDelta(index=index, function=fragment)
                out.append(self._delta(Delta(tool_calls=[call])))

    def _message_delta(self, event: _MessageDelta, out: list[ChatChunk]) -> None:
        if event.usage is not None:
            self._merge_usage(event.usage)
        finish = finish_reason(event.delta.stop_reason) or "stop"
        out.append(self._delta(Delta(), finish))

    def _merge_usage(self, update: AnthropicUsage) -> None:
        """Counts are cumulative: a later event's value replaces an earlier one."""
        usage = self.usage
        if update.input_tokens is not None:
            usage.input_tokens = update.input_tokens
        if update.output_tokens is not None:
            usage.output_tokens = update.output_tokens
        if update.cache_creation_input_tokens is not None:
            usage.cache_creation_input_tokens = update.cache_creation_input_tokens
        if update.cache_read_input_tokens is not None:
            usage.cache_read_input_tokens = update.cache_read_input_tokens


class AnthropicChunkStream:
    """Canonical chunk batches from an opened Anthropic SSE response."""

    def __init__(self, transport: HTTPTransport, response: Response) -> None:
        self._transport = transport
        self._response = response

    def __aiter__(self) -> AsyncIterator[ChunkBatch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[ChunkBatch]:
        decoder = SSEDecoder()
        translator = StreamTranslator(self._transport.redact)
        try:
            # Read to the end of the HTTP message even after message_stop, so the
            # connection goes back to the pool instead of being closed.
            async for data in self._transport.iter_chunks(self._response):
                if translator.done:
                    continue
                chunks: list[ChatChunk] = []
                failure: GatewayError | None = None
                try:
                    for event, payload in decoder.feed(data):
                        if translator.feed(event, payload, chunks):
                            break  # message_stop: the message is complete
                except GatewayError as error:
                    failure = error  # an error event: what came before it still goes out
                if chunks:
                    yield ChunkBatch(chunks)
                if failure is not None:
                    raise failure
        finally:
            self._response.close()  # a no-op when the body was read to its end
        if not translator.done:
            raise UpstreamProtocolError("The upstream closed the stream before it was complete.")

    async def aclose(self) -> None:
        self._response.close()

"""Anthropic Messages SSE events -> canonical chat chunks.

``StreamTranslator`` is pure (events in, chunks out) so it is tested without
sockets; ``AnthropicChunkStream`` feeds it from the upstream connection and yields
one ``ChunkBatch`` per read: the read's canonical chunks and its events framed
again as SSE (``raw``, wire ``anthropic``, one join per read), which the
Anthropic front door relays as they are while the call allows it. Every read
yields a batch, also one whose events have no canonical chunk (``ping``,
``content_block_stop``, citations): its ``chunks`` are then empty.

- ``message_start`` -> a role chunk; input and cache token counts are remembered.
- ``content_block_start`` ``tool_use`` -> a tool-call delta (id, name) whose
  ``index`` counts tool blocks in this message, not Anthropic's block index.
- ``text_delta`` -> ``content``; ``input_json_delta`` -> an arguments fragment.
- ``thinking_delta`` -> ``reasoning_content`` (a later thinking block starts with a
  blank line, as the blocks are joined in a complete reply); ``signature_delta`` ->
  a ``thinking_blocks`` entry with the block's whole thinking text and signature;
  a ``redacted_thinking`` block -> a ``thinking_blocks`` entry when it starts.
- ``message_delta`` -> the finish chunk (with the matched ``stop_sequence``);
  ``message_stop`` -> a usage-only chunk (``choices: []``), which feeds
  accounting and ``include_usage``.
- ``ping`` and unknown events have no chunk; ``error`` raises the mapped error.
- Citations (``citations_delta``) and server-tool blocks have no canonical form:
  only the raw relay carries them.
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
    JSONObject,
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
    thinking: str | None = None
    signature: str | None = None


class _BlockDelta(msgspec.Struct, gc=False):
    index: int
    delta: _BlockDeltaBody


class _StopDelta(msgspec.Struct, gc=False):
    stop_reason: str | None = None
    stop_sequence: str | None = None


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

    __slots__ = (
        "_thinking",
        "_thought",
        "created",
        "done",
        "id",
        "model",
        "redact",
        "tools",
        "usage",
    )

    def __init__(self, redact: Redactor, created: int | None = None) -> None:
        self.redact = redact
        self.created = int(time.time()) if created is None else created
        self.id = ""
        self.model = ""
        self.tools: dict[int, int] = {}  # Anthropic block index -> tool call index
        self.usage = AnthropicUsage()
        self.done = False
        self._thinking: dict[int, list[str]] = {}  # thinking block index -> its text so far
        self._thought = False  # whether reasoning text went out (the next block is apart)

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

    def _reasoning(self, index: int, text: str, out: list[ChatChunk]) -> None:
        pieces = self._thinking.get(index)
        if pieces is None:
            pieces = self._thinking[index] = []
        shown = "\n\n" + text if not pieces and self._thought else text  # as blocks join
        pieces.append(text)
        self._thought = True
        out.append(self._delta(Delta(reasoning_content=shown)))

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
        elif block.type == "thinking":
            self._thinking[event.index] = []
            if block.thinking:
                self._reasoning(event.index, block.thinking, out)
        elif block.type == "redacted_thinking":
            entry: JSONObject = {"type": "redacted_thinking", "data": block.data or ""}
            out.append(self._delta(Delta(thinking_blocks=[entry])))

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
        elif delta.type == "thinking_delta":
            if delta.thinking:
                self._reasoning(event.index, delta.thinking, out)
        elif delta.type == "signature_delta":
            thinking = "".join(self._thinking.pop(event.index, ()))
            block: JSONObject = {
                "type": "thinking",
                "thinking": thinking,
                "signature": delta.signature or "",
            }
            out.append(self._delta(Delta(thinking_blocks=[block])))

    def _message_delta(self, event: _MessageDelta, out: list[ChatChunk]) -> None:
        if event.usage is not None:
            self._merge_usage(event.usage)
        finish = finish_reason(event.delta.stop_reason) or "stop"
        chunk = self._delta(Delta(), finish)
        if event.delta.stop_sequence is not None:
            chunk.choices[0].stop_sequence = event.delta.stop_sequence
        out.append(chunk)

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


_PREFIXES = {
    name: b"event: " + name.encode() + b"\ndata: "
    for name in (
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
    )
}


def _prefix(event: str | None) -> bytes:
    """The SSE lines before an event's data, as the upstream framed it."""
    if event is None:
        return b"data: "
    prefix = _PREFIXES.get(event)
    return prefix if prefix is not None else b"event: " + event.encode() + b"\ndata: "


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
                raw: list[bytes] = []
                failure: GatewayError | None = None
                try:
                    for event, payload in decoder.feed(data):
                        done = translator.feed(event, payload, chunks)
                        if b"\n" in payload:  # multi-line data: one data line each
                            payload = payload.replace(b"\n", b"\ndata: ")
                        raw += (_prefix(event), payload, b"\n\n")
                        if done:
                            break  # message_stop: the message is complete
                except GatewayError as error:
                    failure = error  # an error event: what came before it still goes out
                if raw:
                    yield ChunkBatch(chunks, [b"".join(raw)], "anthropic")
                if failure is not None:
                    raise failure
        finally:
            self._response.close()  # a no-op when the body was read to its end
        if not translator.done:
            raise UpstreamProtocolError("The upstream closed the stream before it was complete.")

    async def aclose(self) -> None:
        self._response.close()

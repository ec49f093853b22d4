"""Canonical chunk stream -> Anthropic's SSE event sequence (the Messages streaming reference).

``message_start`` (+ ``ping``), then per content block ``content_block_start`` /
``content_block_delta``... / ``content_block_stop``, then ``message_delta`` (stop
reason, cumulative usage) and ``message_stop``. Blocks are numbered in the order
they open: text first when the model writes before calling tools, one
``tool_use`` block per canonical tool-call index. Only one block is open at a
time: text after a tool call, or a new tool-call index, closes the open block.

Odd upstream orders are absorbed: a tool call whose first fragment has no name
yet is held back until the name arrives (or the stream ends); an argument
fragment for a tool block that was already closed (an upstream interleaving
parallel calls, which OpenAI does not do) is still sent at that block's index,
where the anthropic SDK assembles it, rather than being lost. ``finish`` closes
whatever is open, so every started block is stopped.

This is the translated path: while the call allows raw relay and an Anthropic
upstream answered, the door writes the upstream's own events instead. Here,
``thinking_blocks`` entries of the deltas (an Anthropic upstream's complete
thinking blocks with their signatures) become thinking blocks of their own,
each sent whole when its entry arrives (its text in one ``thinking_delta``,
then its ``signature_delta``); redacted ones likewise. Reasoning text without
blocks (``reasoning_content`` alone) is not shown: it has no signature. The
matched stop string (``ChunkChoice.stop_sequence``, from Anthropic upstreams)
goes into ``message_delta``; citations have no canonical form and are lost.

Hot path: one ``bytes`` per batch, text deltas built from a per-block prefix
and ``orjson`` of the text alone.
"""

from __future__ import annotations

import orjson

from gatewise.core.types import ChunkBatch, JSONObject, ToolCallDelta, Usage
from gatewise.formats.anthropic import anthropic_usage
from gatewise.http.anthropic_response import full_usage, stop_reason

PING = b'event: ping\ndata: {"type":"ping"}\n\n'
MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _delta_prefix(index: int, kind: bytes) -> bytes:
    return (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
        + str(index).encode()
        + b',"delta":{"type":"'
        + kind
    )


class _PendingTool:
    """A tool call seen before its name: held until it can open a ``tool_use`` block."""

    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []


class AnthropicStreamEncoder:
    """Turns canonical ``ChunkBatch``es into Anthropic SSE bytes for one message."""

    __slots__ = (
        "_finish",
        "_input_estimate",
        "_json_prefix",
        "_next",
        "_open",
        "_open_is_text",
        "_pending",
        "_stop_sequence",
        "_text_prefix",
        "_tools",
        "ident",
        "model",
        "usage",
    )

    def __init__(self, model: str, ident: str, input_estimate: int) -> None:
        self.model = model
        self.ident = ident
        self.usage: Usage | None = None
        self._input_estimate = input_estimate  # for message_start, before usage is known
        self._finish: str | None = None
        self._stop_sequence: str | None = None
        self._open = -1  # index of the open block, -1 when none is open
        self._open_is_text = False
        self._next = 0
        self._text_prefix = b""
        self._json_prefix: dict[int, bytes] = {}  # tool block index -> delta prefix
        self._tools: dict[int, int] = {}  # canonical tool-call index -> block index
        self._pending: dict[int, _PendingTool] = {}

    def start(self) -> bytes:
        message: JSONObject = {
            "id": self.ident,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self._input_estimate,
                "output_tokens": 1,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        return event("message_start", {"type": "message_start", "message": message}) + PING

    def encode(self, batch: ChunkBatch) -> bytes:
        """The events for one batch (``b""`` when it carries nothing to show)."""
        out: list[bytes] = []
        for chunk in batch.chunks:
            if chunk.usage is not None:
                self.usage = chunk.usage
            for choice in chunk.choices:
                if choice.index != 0:
                    continue  # one message per request: other choices have no place
                delta = choice.delta
                if delta.thinking_blocks:
                    for block in delta.thinking_blocks:
                        self._thinking(block, out)
                text = delta.content or delta.refusal
                if text:
                    self._text(text, out)
                if delta.tool_calls:
                    for call in delta.tool_calls:
                        self._tool(call, out)
                if choice.finish_reason is not None:
                    self._finish = choice.finish_reason
                    matched = choice.stop_sequence
                    if isinstance(matched, str):
                        self._stop_sequence = matched
        return b"".join(out)

    def finish(self, usage: Usage | None = None) -> bytes:
        """Close open blocks, then ``message_delta`` (stop reason, usage) and ``message_stop``.

        ``usage``: the call's usage as the corridor recorded it (the upstream's, or the
        gateway's estimate when it reported none); the upstream's usage chunk otherwise.
        """
        if usage is not None:
            self.usage = usage
        out: list[bytes] = []
        for index in list(self._pending):
            self._open_tool(index, self._pending.pop(index), out)
        self._close(out)
        sequence = self._stop_sequence
        reason = stop_reason(self._finish, bool(self._tools), sequence)
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        out.append(
            event(
                "message_delta",
                {"type": "message_delta", "delta": delta, "usage": self._final_usage()},
            )
        )
        out.append(MESSAGE_STOP)
        return b"".join(out)

    def _final_usage(self) -> dict[str, int]:
        if self.usage is not None:
            return full_usage(anthropic_usage(self.usage))
        return full_usage({"input_tokens": self._input_estimate, "output_tokens": 0})

    # --- blocks ---------------------------------------------------------------------

    def _close(self, out: list[bytes]) -> None:
        if self._open >= 0:
            out.append(
                b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
                + str(self._open).encode()
                + b"}\n\n"
            )
            self._open = -1

    def _start_block(self, block: JSONObject, out: list[bytes]) -> int:
        self._close(out)
        index = self._open = self._next
        self._next += 1
        data = {"type": "content_block_start", "index": index, "content_block": block}
        out.append(event("content_block_start", data))
        return index

    def _thinking(self, block: JSONObject, out: list[bytes]) -> None:
        """One complete thinking (or redacted thinking) block, opened and closed."""
        kind = block.get("type")
        if kind == "thinking":
            index = self._start_block({"type": "thinking", "thinking": "", "signature": ""}, out)
            thinking = block.get("thinking")
            if thinking:
                out.append(_delta_prefix(index, b'thinking_delta","thinking":'))
                out.append(orjson.dumps(thinking) + b"}}\n\n")
            out.append(_delta_prefix(index, b'signature_delta","signature":'))
            out.append(orjson.dumps(block.get("signature") or "") + b"}}\n\n")
        elif kind == "redacted_thinking":
            self._start_block({"type": "redacted_thinking", "data": block.get("data") or ""}, out)
        else:
            return
        self._open_is_text = False
        self._close(out)

    def _text(self, text: str, out: list[bytes]) -> None:
        if self._open < 0 or not self._open_is_text:
            index = self._start_block({"type": "text", "text": ""}, out)
            self._open_is_text = True
            self._text_prefix = _delta_prefix(index, b'text_delta","text":')
        out.append(self._text_prefix + orjson.dumps(text) + b"}}\n\n")

    def _tool(self, call: ToolCallDelta, out: list[bytes]) -> None:
        function = call.function
        arguments = function.arguments if function is not None else None
        block = self._tools.get(call.index)
        if block is not None:
            if arguments:
                self._arguments(block, arguments, out)
            return
        pending = self._pending.get(call.index)
        if pending is None:
            pending = self._pending[call.index] = _PendingTool()
        pending.id = pending.id or call.id
        if function is not None and function.name:
            pending.name = function.name
        if arguments:
            pending.arguments.append(arguments)
        if pending.name is not None:
            self._open_tool(call.index, self._pending.pop(call.index), out)

    def _open_tool(self, index: int, pending: _PendingTool, out: list[bytes]) -> None:
        ident = pending.id or f"toolu_{self.ident[4:]}_{index}"
        block_start: JSONObject = {
            "type": "tool_use",
            "id": ident,
            "name": pending.name or "",
            "input": {},
        }
        block = self._start_block(block_start, out)
        self._open_is_text = False
        self._tools[index] = block
        self._json_prefix[block] = _delta_prefix(block, b'input_json_delta","partial_json":')
        if pending.arguments:
            self._arguments(block, "".join(pending.arguments), out)

    def _arguments(self, block: int, arguments: str, out: list[bytes]) -> None:
        out.append(self._json_prefix[block] + orjson.dumps(arguments) + b"}}\n\n")

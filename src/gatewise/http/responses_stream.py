"""Chat chunk batches -> Responses API stream events (``event:`` + ``data:`` SSE).

A small state machine: text deltas open an assistant ``message`` item with an
``output_text`` part (a refusal gets a ``refusal`` part), each tool call opens
a ``function_call`` item; an item is closed (its ``.done`` events sent) when
the next one starts or the stream ends. Each batch of chunks becomes one bytes
blob, so the front door makes one send per batch.
"""

from __future__ import annotations

import orjson

from gatewise.core.types import ChatChunk, JSONObject, ToolCallDelta, Usage
from gatewise.http.responses_ids import ResponseIds
from gatewise.http.responses_output import (
    fail,
    finish,
    function_call_item,
    message_item,
    text_part,
)

_DELTA_EVENT = {"output_text": "response.output_text.delta", "refusal": "response.refusal.delta"}


class _OpenMessage:
    __slots__ = ("buffer", "index", "item", "kind", "parts")

    def __init__(self, item: JSONObject, index: int) -> None:
        self.item = item
        self.index = index
        self.parts: list[JSONObject] = []
        self.kind: str | None = None
        self.buffer: list[str] = []

    def part(self) -> JSONObject:
        text = "".join(self.buffer)
        return (
            text_part(text) if self.kind == "output_text" else {"type": "refusal", "refusal": text}
        )


class _OpenCall:
    __slots__ = ("arguments", "index", "item", "tool_index")

    def __init__(self, item: JSONObject, index: int, tool_index: int) -> None:
        self.item = item
        self.index = index
        self.tool_index = tool_index
        self.arguments: list[str] = []


class ResponseStreamEncoder:
    """Encodes one streamed response; ``response`` is its Response object, kept current."""

    def __init__(self, response: JSONObject, ids: ResponseIds) -> None:
        self.response = response
        self.ids = ids
        self.output: list[JSONObject] = []
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self._sequence = 0
        self._message: _OpenMessage | None = None
        self._call: _OpenCall | None = None

    def _event(self, out: list[bytes], event_type: str, payload: JSONObject) -> None:
        payload["sequence_number"] = self._sequence
        self._sequence += 1
        out += (b"event: ", event_type.encode(), b"\ndata: ", orjson.dumps(payload), b"\n\n")

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> bytes:
        out: list[bytes] = []
        for kind in ("response.created", "response.in_progress"):
            self._event(out, kind, {"type": kind, "response": self.response})
        return b"".join(out)

    def feed(self, chunks: list[ChatChunk]) -> bytes:
        """The events for one batch of chunks (empty bytes when there are none)."""
        out: list[bytes] = []
        for chunk in chunks:
            if chunk.usage is not None:
                self.usage = chunk.usage
            for choice in chunk.choices:
                if choice.index != 0:
                    continue  # the Responses API has one output per response
                delta = choice.delta
                if delta.content:
                    self._text(out, "output_text", delta.content)
                if delta.refusal:
                    self._text(out, "refusal", delta.refusal)
                if delta.tool_calls:
                    for call in delta.tool_calls:
                        self._tool_call(out, call)
                if choice.finish_reason:
                    self.finish_reason = choice.finish_reason
        return b"".join(out) if out else b""

    def finish(self) -> bytes:
        """Close open items and complete the response: the last events of the stream."""
        out: list[bytes] = []
        status = "incomplete" if self.finish_reason in ("length", "content_filter") else "completed"
        if not self.output:
            self._text(out, "output_text", "")  # an empty answer is still one message
        self._close(out, status)
        finish(self.response, self.output, self.finish_reason, self.usage)
        kind = f"response.{self.response['status']}"
        self._event(out, kind, {"type": kind, "response": self.response})
        return b"".join(out)

    def fail(self, code: str, detail_code: str | None, message: str) -> bytes:
        """A mid-stream failure: an ``error`` event, then ``response.failed``."""
        out: list[bytes] = []
        self._event(
            out, "error", {"type": "error", "code": detail_code, "message": message, "param": None}
        )
        self._materialize("incomplete")
        fail(self.response, self.output, code, message)
        self._event(out, "response.failed", {"type": "response.failed", "response": self.response})
        return b"".join(out)

    # --- items ---------------------------------------------------------------------

    def _text(self, out: list[bytes], kind: str, delta: str) -> None:
        if self._call is not None:
            self._close_call(out, "completed")
        message = self._message
        if message is None:
            item = message_item(self.ids.item("message"), [], "in_progress")
            message = self._message = _OpenMessage(item, len(self.output))
            self.output.append(item)
            self._event(
                out,
                "response.output_item.added",
                {"type": "response.output_item.added", "output_index": message.index, "item": item},
            )
        if message.kind != kind:
            if message.kind is not None:
                self._close_part(out, message)
            message.kind = kind
            message.buffer = []
            empty = text_part("") if kind == "output_text" else {"type": "refusal", "refusal": ""}
            self._event(out, "response.content_part.added", self._part_event(message, empty))
        if not delta:
            return
        message.buffer.append(delta)
        payload = {
            "type": _DELTA_EVENT[kind],
            "item_id": message.item["id"],
            "output_index": message.index,
            "content_index": len(message.parts),
            "delta": delta,
        }
        if kind == "output_text":
            payload["logprobs"] = []
        self._event(out, _DELTA_EVENT[kind], payload)

    def _part_event(
        self, message: _OpenMessage, part: JSONObject, done: bool = False
    ) -> JSONObject:
        kind = "response.content_part.done" if done else "response.content_part.added"
        return {
            "type": kind,
            "item_id": message.item["id"],
            "output_index": message.index,
            "content_index": len(message.parts),
            "part": part,
        }

    def _close_part(self, out: list[bytes], message: _OpenMessage) -> None:
        part = message.part()
        base = {
            "item_id": message.item["id"],
            "output_index": message.index,
            "content_index": len(message.parts),
        }
        if message.kind == "output_text":
            done = {"type": "response.output_text.done", **base, "text": part["text"]}
            done["logprobs"] = []
            self._event(out, "response.output_text.done", done)
        else:
            done = {"type": "response.refusal.done", **base, "refusal": part["refusal"]}
            self._event(out, "response.refusal.done", done)
        self._event(out, "response.content_part.done", self._part_event(message, part, done=True))
        message.parts.append(part)
        message.kind = None

    def _close_message(self, out: list[bytes], status: str) -> None:
        message = self._message
        assert message is not None
        if message.kind is not None:
            self._close_part(out, message)
        message.item["content"] = message.parts
        message.item["status"] = status
        self._message = None
        self._item_done(out, message.index, message.item)

    def _tool_call(self, out: list[bytes], delta: ToolCallDelta) -> None:
        call = self._call
        function = delta.function
        if call is None or call.tool_index != delta.index:
            if self._message is not None:
                self._close_message(out, "completed")
            if call is not None:
                self._close_call(out, "completed")
            item = function_call_item(
                self.ids.item("function_call"),
                delta.id or "",
                (function.name if function else None) or "",
                "",
                "in_progress",
            )
            call = self._call = _OpenCall(item, len(self.output), delta.index)
            self.output.append(item)
            self._event(
                out,
                "response.output_item.added",
                {"type": "response.output_item.added", "output_index": call.index, "item": item},
            )
        elif function is not None and function.name:
            call.item["name"] += function.name  # a name streamed in pieces
        if function is not None and function.arguments:
            call.arguments.append(function.arguments)
            self._event(
                out,
                "response.function_call_arguments.delta",
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": call.item["id"],
                    "output_index": call.index,
                    "delta": function.arguments,
                },
            )

    def _close_call(self, out: list[bytes], status: str) -> None:
        call = self._call
        assert call is not None
        item = call.item
        item["arguments"] = "".join(call.arguments)
        item["status"] = status
        self._call = None
        self._event(
            out,
            "response.function_call_arguments.done",
            {
                "type": "response.function_call_arguments.done",
                "item_id": item["id"],
                "output_index": call.index,
                "name": item["name"],
                "arguments": item["arguments"],
            },
        )
        self._item_done(out, call.index, item)

    def _item_done(self, out: list[bytes], index: int, item: JSONObject) -> None:
        self._event(
            out,
            "response.output_item.done",
            {"type": "response.output_item.done", "output_index": index, "item": item},
        )

    def _close(self, out: list[bytes], status: str) -> None:
        if self._message is not None:
            self._close_message(out, status)
        if self._call is not None:
            self._close_call(out, status)

    def _materialize(self, status: str) -> None:
        """Put what open items hold so far into the output (for ``response.failed``)."""
        message = self._message
        if message is not None:
            parts = [*message.parts, message.part()] if message.kind else message.parts
            message.item["content"] = parts
            message.item["status"] = status
        if self._call is not None:
            self._call.item["arguments"] = "".join(self._call.arguments)
            self._call.item["status"] = status

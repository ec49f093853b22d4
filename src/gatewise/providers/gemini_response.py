"""Gemini ``GenerateContentResponse`` -> canonical responses and stream chunks.

- candidates -> choices (by ``index``); text parts are joined into ``content``, thought
  parts (``thought: true``, the summaries Gemini returns with ``includeThoughts``)
  into ``reasoning_content``; ``functionCall`` parts -> tool calls with synthesised ids
  (``call_<response id>_<choice>_<n>``, so the same response always gets the same ids,
  plus the thought signature when Gemini sent one: see ``formats.gemini.tool_call_id``);
- ``finishReason`` -> ``finish_reason`` (``formats.gemini.FINISH_REASONS``); a prompt
  blocked by ``promptFeedback.blockReason`` (no candidates) is a normal response whose
  choices end with ``content_filter``, not an error;
- ``usageMetadata`` -> usage (``formats.gemini.usage_from_gemini``).

Streams: every SSE event is a delta of the same shape. ``StreamTranslator`` turns each
into chunks (the first chunk of a choice carries the role, function calls arrive as
complete tool-call deltas, a finish reason gets a chunk of its own) and, at the end,
a usage-only chunk from the last ``usageMetadata``.
"""

from __future__ import annotations

import secrets
import time

import msgspec
import orjson

from gatewise.core.errors import UpstreamProtocolError
from gatewise.core.types import (
    ChatChunk,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
)
from gatewise.formats.gemini import (
    Candidate,
    GenerateContentResponse,
    UsageMetadata,
    finish_reason,
    tool_call_id,
    usage_from_gemini,
)

_decoder = msgspec.json.Decoder(GenerateContentResponse)


def decode(data: bytes) -> GenerateContentResponse:
    try:
        return _decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise UpstreamProtocolError(
            "The upstream returned something that is not a Gemini GenerateContentResponse."
        ) from None


def _stem(response_id: str | None) -> str:
    """The per-response part of tool-call ids: the response id (alphanumerics) or random."""
    if response_id:
        stem = "".join(c for c in response_id if c.isalnum())[:32]
        if stem:
            return stem
    return secrets.token_hex(8)


def _tool_calls(candidate: Candidate, stem: str, index: int, start: int) -> list[ToolCall]:
    calls: list[ToolCall] = []
    if candidate.content is None:
        return calls
    for part in candidate.content.parts:
        call = part.function_call
        if call is not None:
            number = start + len(calls)
            calls.append(
                ToolCall(
                    id=tool_call_id(f"call_{stem}_{index}_{number}", part.thought_signature),
                    function=FunctionCall(
                        name=call.name, arguments=orjson.dumps(call.args or {}).decode()
                    ),
                )
            )
    return calls


def _text(candidate: Candidate, *, thought: bool = False) -> str:
    """The candidate's answer text, or with ``thought`` its thought text (usually empty)."""
    if candidate.content is None:
        return ""
    parts = candidate.content.parts
    if len(parts) == 1:  # the common case
        part = parts[0]
        return part.text if part.text is not None and part.thought is thought else ""
    return "".join(p.text for p in parts if p.text is not None and p.thought is thought)


def _thoughts(candidate: Candidate) -> str:
    """The candidate's thought text (empty when it has none: the common case)."""
    return _text(candidate, thought=True)


def chat_response(data: bytes, model: str, n: int) -> ChatResponse:
    """A non-streamed answer; ``n`` is how many choices were asked for (for blocked prompts)."""
    reply = decode(data)
    stem = _stem(reply.response_id)
    choices: list[Choice] = []
    for position, candidate in enumerate(reply.candidates):
        index = candidate.index if candidate.index is not None else position
        calls = _tool_calls(candidate, stem, index, 0)
        text = _text(candidate)
        empty = not text and (bool(calls) or candidate.content is None)
        message = ResponseMessage(content=None if empty else text, tool_calls=calls or None)
        thoughts = _thoughts(candidate)
        if thoughts:
            message.reasoning_content = thoughts
        finish = finish_reason(candidate.finish_reason or "STOP", bool(calls))
        choices.append(Choice(index=index, message=message, finish_reason=finish))
    if not choices:
        if reply.prompt_feedback is None or not reply.prompt_feedback.block_reason:
            raise UpstreamProtocolError("The upstream returned neither candidates nor a reason.")
        choices = [
            Choice(index=i, message=ResponseMessage(), finish_reason="content_filter")
            for i in range(max(n, 1))
        ]
    elif len(choices) > 1:
        choices.sort(key=lambda choice: choice.index)
    meta = reply.usage_metadata
    return ChatResponse(
        id="chatcmpl-" + (reply.response_id or secrets.token_hex(12)),
        created=int(time.time()),
        model=reply.model_version or model,
        choices=choices,
        usage=usage_from_gemini(meta) if meta is not None else None,
    )


class StreamTranslator:
    """Turns the events of one Gemini stream into canonical chunks."""

    __slots__ = ("_calls", "_started", "created", "finished", "id", "meta", "model", "n", "stem")

    def __init__(self, model: str, n: int) -> None:
        self.model = model
        self.n = max(n, 1)
        self.id = ""
        self.stem = ""
        self.created = int(time.time())
        self.finished: set[int] = set()
        self.meta: UsageMetadata | None = None
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}  # choice index -> tool calls so far

    def _chunk(self, index: int, delta: Delta, finish: str | None = None) -> ChatChunk:
        choice = ChunkChoice(index=index, delta=delta, finish_reason=finish)
        return ChatChunk(id=self.id, created=self.created, model=self.model, choices=[choice])

    def feed(self, event: GenerateContentResponse) -> list[ChatChunk]:
        if not self.id:
            self.id = "chatcmpl-" + (event.response_id or secrets.token_hex(12))
            self.stem = _stem(event.response_id)
            self.model = event.model_version or self.model
        chunks: list[ChatChunk] = []
        for position, candidate in enumerate(event.candidates):
            index = candidate.index if candidate.index is not None else position
            self._candidate(candidate, index, chunks)
        feedback = event.prompt_feedback
        if not event.candidates and feedback is not None and feedback.block_reason:
            for index in range(self.n):
                if index not in self.finished:
                    self.finished.add(index)
                    delta = Delta() if index in self._started else Delta(role="assistant")
                    chunks.append(self._chunk(index, delta, "content_filter"))
        if event.usage_metadata is not None:
            self.meta = event.usage_metadata
        return chunks

    def _candidate(self, candidate: Candidate, index: int, chunks: list[ChatChunk]) -> None:
        text = _text(candidate)
        seen = self._calls.get(index, 0)
        calls = _tool_calls(candidate, self.stem, index, seen)
        role = None
        if index not in self._started:
            self._started.add(index)
            role = "assistant"
        thoughts = _thoughts(candidate)
        if role or text or calls or thoughts:
            delta = Delta(role=role, content=text or ("" if role and not calls else None))
            if thoughts:
                delta.reasoning_content = thoughts
            if calls:
                self._calls[index] = seen + len(calls)
                delta.tool_calls = [
                    ToolCallDelta(index=seen + k, id=c.id, type="function", function=c.function)
                    for k, c in enumerate(calls)
                ]
            chunks.append(self._chunk(index, delta))
        if candidate.finish_reason:
            self.finished.add(index)
            finish = finish_reason(candidate.finish_reason, index in self._calls)
            chunks.append(self._chunk(index, Delta(), finish))

    def finish(self) -> list[ChatChunk]:
        """The closing usage chunk; raises when the stream ended before any finish reason."""
        if not self.finished:
            raise UpstreamProtocolError("The upstream closed the stream before it was complete.")
        if self.meta is None:
            return []
        usage = usage_from_gemini(self.meta)
        return [ChatChunk(id=self.id, created=self.created, model=self.model, usage=usage)]

"""Anthropic Messages responses and errors -> canonical types.

Text blocks are joined into ``content``; ``tool_use`` blocks become ``tool_calls``
(``input`` re-encoded as the JSON arguments string, ids kept verbatim). Thinking
becomes ``reasoning_content`` (the thinking texts joined by a blank line) and
``thinking_blocks`` (every thinking and redacted-thinking block with its
signature, in order, so an OpenAI-format client can send them back); the matched
stop string becomes the choice's ``stop_sequence``. Citations and server-tool
blocks have no canonical form and are left out. Anthropic has no ``created``
field: the gateway stamps the time it received the answer.

The body itself stays on the response (``attach_raw``, wire ``anthropic``): the
Anthropic front door relays it as it is while the call allows raw relay, so
Anthropic clients get everything, citations included.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgspec
import orjson

from gatewise.core.errors import GatewayError, UpstreamError, UpstreamProtocolError
from gatewise.core.types import (
    ChatResponse,
    Choice,
    FunctionCall,
    JSONObject,
    ResponseMessage,
    ToolCall,
    Usage,
    attach_raw,
)
from gatewise.formats.anthropic import (
    FINISH_REASON_FROM_STOP,
    STATUS_FROM_ERROR_TYPE,
    error_type_for_status,
    usage_from_anthropic,
)
from gatewise.formats.openai import upstream_error_fields
from gatewise.providers.transport import RELAYED_ERROR_HEADERS, Redactor


class AnthropicUsage(msgspec.Struct, gc=False):
    """Usage as Anthropic reports it (stream deltas may leave input counts out)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class ContentBlock(msgspec.Struct, gc=False):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None


class AnthropicMessage(msgspec.Struct, gc=False, kw_only=True):
    """A ``Message``; ``content`` is required: a 200 without it is not a message."""

    id: str = ""
    model: str = ""
    content: list[ContentBlock]
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: AnthropicUsage | None = None


_message_decoder = msgspec.json.Decoder(AnthropicMessage)


def decode_message(body: bytes) -> ChatResponse:
    """The canonical chat response for an Anthropic ``Message`` body (its bytes attached)."""
    try:
        message = _message_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise UpstreamProtocolError(
            "The upstream returned a response that is not a valid Anthropic message."
        ) from None
    texts: list[str] = []
    calls: list[ToolCall] = []
    thoughts: list[str] = []
    blocks: list[JSONObject] = []
    for block in message.content:
        kind = block.type
        if kind == "text":
            if block.text:
                texts.append(block.text)
        elif kind == "tool_use":
            calls.append(tool_call(block))
        elif kind == "thinking" or kind == "redacted_thinking":
            thinking = thinking_block(block)
            blocks.append(thinking)
            if block.thinking:
                thoughts.append(block.thinking)
    reply = ResponseMessage(content="".join(texts) if texts else None, tool_calls=calls or None)
    if blocks:
        reply.thinking_blocks = blocks
        if thoughts:
            reply.reasoning_content = "\n\n".join(thoughts)
    finish = finish_reason(message.stop_reason) or "stop"
    choice = Choice(index=0, message=reply, finish_reason=finish)
    if message.stop_sequence is not None:
        choice.stop_sequence = message.stop_sequence
    response = ChatResponse(
        id=message.id,
        created=int(time.time()),
        model=message.model,
        choices=[choice],
        usage=canonical_usage(message.usage) if message.usage is not None else None,
    )
    attach_raw(response, body, "anthropic")
    return response


def thinking_block(block: ContentBlock) -> JSONObject:
    """A thinking or redacted-thinking block as Anthropic sends (and takes back) it."""
    if block.type == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data or ""}
    return {
        "type": "thinking",
        "thinking": block.thinking or "",
        "signature": block.signature or "",
    }


def tool_call(block: ContentBlock) -> ToolCall:
    arguments = orjson.dumps(block.input if block.input is not None else {}).decode()
    return ToolCall(id=block.id or "", function=FunctionCall(name=block.name, arguments=arguments))


def finish_reason(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASON_FROM_STOP.get(stop_reason, "stop")


def canonical_usage(usage: AnthropicUsage) -> Usage:
    return usage_from_anthropic(
        usage.input_tokens or 0,
        usage.output_tokens or 0,
        usage.cache_creation_input_tokens or 0,
        usage.cache_read_input_tokens or 0,
    )


# --- errors ------------------------------------------------------------------------


def error_from_response(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, redact: Redactor
) -> UpstreamError:
    """An upstream error status, relayed with its status, Anthropic type and message.

    ``retry-after`` (and the other retry-steering headers) are relayed so clients
    back off as the upstream asked; credentials never reach the message.
    """
    message, type_, _code, _param = upstream_error_fields(body)
    if not message:
        message = f"The upstream provider '{provider}' answered HTTP {status}."
    relayed = {k: headers[k] for k in RELAYED_ERROR_HEADERS if k in headers}
    return UpstreamError(
        redact(message)[:2000],
        status=status,
        type=type_ or error_type_for_status(status),
        headers=relayed,
    )


class _ErrorDetail(msgspec.Struct, gc=False):
    type: str = "api_error"
    message: str = ""


class _ErrorEvent(msgspec.Struct, gc=False):
    error: _ErrorDetail = msgspec.field(default_factory=_ErrorDetail)


_error_event_decoder = msgspec.json.Decoder(_ErrorEvent)


def error_from_event(data: bytes, redact: Redactor) -> GatewayError:
    """A mid-stream ``error`` event as the error it stands for (``overloaded_error`` -> 529)."""
    try:
        detail = _error_event_decoder.decode(data).error
    except (msgspec.ValidationError, msgspec.DecodeError):
        detail = _ErrorDetail()
    message = redact(detail.message)[:2000] or "The upstream reported an error mid-stream."
    status = STATUS_FROM_ERROR_TYPE.get(detail.type, 502)
    return UpstreamError(message, status=status, type=detail.type)

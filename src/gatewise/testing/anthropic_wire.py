"""Anthropic Messages API bodies and SSE events, byte for byte in the real shapes.

Pure functions from values to bytes (Anthropic's Messages API reference: messages,
streaming events, errors);
the server module decides when to send them. Text deltas, the events a stream
is made of, are built from pre-encoded pieces.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from gatewise.testing.anthropic_reply import MessageReply, thinking_signature
from gatewise.testing.httpserver import encode_headers
from gatewise.testing.openai_wire import split_text

__all__ = [
    "GARBAGE_BODY",
    "GARBAGE_EVENTS",
    "error_body",
    "error_event",
    "message_body",
    "message_for_type",
    "model_object",
    "models_list",
    "ratelimit_headers",
    "status_error",
    "stream_events",
]

ORGANIZATION_ID = "7c1f0e8a-0000-4000-8000-00000000fa4e"
MISSING_KEY_MESSAGE = "x-api-key header is required"
INVALID_KEY_MESSAGE = "invalid x-api-key"
MISSING_VERSION_MESSAGE = "anthropic-version: header is required"
INVALID_JSON_MESSAGE = "There was an error parsing the body of your request: invalid JSON"

# status -> (error type, message); "{model}" and "{org}" are filled in.
_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", INVALID_KEY_MESSAGE),
    402: (
        "billing_error",
        "Your credit balance is too low to access the Anthropic API. "
        "Please go to Plans & Billing to upgrade or purchase credits.",
    ),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization ({org}) of 50 "
        "requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. "
        "You can see the response headers for current usage. Please reduce the prompt length "
        "or the maximum tokens requested, or try again later.",
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def error_body(type_: str, message: str, request_id: str) -> bytes:
    """Anthropic's error envelope."""
    return orjson.dumps(
        {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}
    )


def status_error(
    status: int,
    request_id: str,
    *,
    model: str = "",
    message: str | None = None,
    type_: str | None = None,
) -> bytes:
    """The body the real API sends with ``status`` (overridable field by field)."""
    default_type, template = _STATUS_ERRORS.get(
        status,
        ("api_error" if status >= 500 else "invalid_request_error", f"Upstream error {status}."),
    )
    if message is None:
        message = template.format(model=model, org=ORGANIZATION_ID)
    return error_body(type_ or default_type, message, request_id)


def message_for_type(type_: str) -> str:
    """The real API's usual message for an error type (``Overloaded`` ...)."""
    for known, template in _STATUS_ERRORS.values():
        if known == type_:
            return template.format(model="", org=ORGANIZATION_ID)
    return "Internal server error"


def error_event(type_: str, message: str, request_id: str) -> bytes:
    """A mid-stream failure after the 200 (the SDK raises on it)."""
    return b"event: error\ndata: " + error_body(type_, message, request_id) + b"\n\n"


def usage(reply: MessageReply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens,
        "cache_creation_input_tokens": reply.cache_creation_input_tokens,
        "cache_read_input_tokens": reply.cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": reply.cache_creation_input_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def content_blocks(reply: MessageReply, tool_ids: Sequence[str]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.thinking is not None:
        thinking = reply.thinking
        blocks.append(
            {"type": "thinking", "thinking": thinking, "signature": thinking_signature(thinking)}
        )
    if reply.redacted_thinking is not None:
        blocks.append({"type": "redacted_thinking", "data": reply.redacted_thinking})
    if reply.text:
        text: dict[str, Any] = {"type": "text", "text": reply.text}
        if reply.citations is not None:
            text["citations"] = reply.citations
        blocks.append(text)
    for tool_id, (name, arguments) in zip(tool_ids, reply.tool_calls, strict=True):
        blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": arguments})
    return blocks


def message_body(
    message_id: str, model: str, reply: MessageReply, tool_ids: Sequence[str]
) -> bytes:
    """A non-streamed ``Message``."""
    return orjson.dumps(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content_blocks(reply, tool_ids),
            "stop_reason": reply.stop_reason,
            "stop_sequence": reply.stop_sequence,
            "usage": usage(reply, reply.output_tokens),
        }
    )


def _event(name: bytes, data: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(data) + b"\n\n"


PING_EVENT = b'event: ping\ndata: {"type": "ping"}\n\n'
MESSAGE_STOP_EVENT = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
_TEXT_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
    b'"delta":{"type":"text_delta","text":%s}}\n\n'
)
_JSON_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
    b'"delta":{"type":"input_json_delta","partial_json":%s}}\n\n'
)
_BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n'


def _block_start(index: int, block: dict[str, Any]) -> bytes:
    return _event(
        b"content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def stream_events(
    message_id: str, model: str, reply: MessageReply, tool_ids: Sequence[str], chunks: int
) -> Iterator[bytes]:
    """Every event of a streamed message, in the real order (a ping after the first block opens)."""
    start: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage(reply, 1),
    }
    yield _event(b"message_start", {"type": "message_start", "message": start})
    index = 0
    if reply.thinking is not None:
        yield _block_start(index, {"type": "thinking", "thinking": "", "signature": ""})
        yield PING_EVENT
        for piece in split_text(reply.thinking, 2):
            delta = {"type": "thinking_delta", "thinking": piece}
            yield _event(
                b"content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        delta = {"type": "signature_delta", "signature": thinking_signature(reply.thinking)}
        yield _event(
            b"content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
        yield _BLOCK_STOP % index
        index += 1
    if reply.redacted_thinking is not None:
        yield _block_start(index, {"type": "redacted_thinking", "data": reply.redacted_thinking})
        if index == 0:
            yield PING_EVENT
        yield _BLOCK_STOP % index
        index += 1
    if reply.text:
        yield _block_start(index, {"type": "text", "text": ""})
        if index == 0:
            yield PING_EVENT
        for cited in reply.citations or ():
            citing = {"type": "citations_delta", "citation": cited}
            yield _event(
                b"content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": citing},
            )
        for piece in split_text(reply.text, chunks):
            yield _TEXT_DELTA % (index, orjson.dumps(piece))
        yield _BLOCK_STOP % index
        index += 1
    for tool_id, (name, _), arguments in zip(
        tool_ids, reply.tool_calls, reply.tool_inputs, strict=True
    ):
        yield _block_start(index, {"type": "tool_use", "id": tool_id, "name": name, "input": {}})
        if index == 0:
            yield PING_EVENT
        yield _JSON_DELTA % (index, b'""')
        for piece in split_text(arguments, max(1, chunks // 4)):
            yield _JSON_DELTA % (index, orjson.dumps(piece))
        yield _BLOCK_STOP % index
        index += 1
    if index == 0:
        yield PING_EVENT
    final = usage(reply, reply.output_tokens)
    del final["cache_creation"], final["service_tier"]
    stop = {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence}
    yield _event(b"message_delta", {"type": "message_delta", "delta": stop, "usage": final})
    yield MESSAGE_STOP_EVENT


GARBAGE_BODY = b"<html><body><h1>502 upstream garbage</h1>not json {{{</body></html>"
GARBAGE_EVENTS = (
    b"event: message_start\ndata: this is not json {{{\n\n",
    b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": \n\n',
    MESSAGE_STOP_EVENT,
)


def model_object(model_id: str) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model_id,
        "display_name": model_id.replace("-", " ").title(),
        "created_at": "2025-09-29T00:00:00Z",
    }


def models_list(models: Sequence[str]) -> bytes:
    return orjson.dumps(
        {
            "data": [model_object(m) for m in models],
            "has_more": False,
            "first_id": models[0] if models else None,
            "last_id": models[-1] if models else None,
        }
    )


def _rfc3339(seconds_from_now: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ratelimit_headers(exhausted_for: float | None = None) -> bytes:
    """``anthropic-ratelimit-*`` headers: plenty left, or requests exhausted for N seconds."""
    reset_in = exhausted_for if exhausted_for is not None else 1.0
    requests_left = "0" if exhausted_for is not None else "3999"
    pairs = [
        ("anthropic-ratelimit-requests-limit", "4000"),
        ("anthropic-ratelimit-requests-remaining", requests_left),
        ("anthropic-ratelimit-requests-reset", _rfc3339(reset_in)),
    ]
    for kind, limit in (("tokens", 2_000_000), ("input-tokens", 1_600_000)):
        pairs += [
            (f"anthropic-ratelimit-{kind}-limit", str(limit)),
            (f"anthropic-ratelimit-{kind}-remaining", str(limit - 1000)),
            (f"anthropic-ratelimit-{kind}-reset", _rfc3339(1.0)),
        ]
    pairs += [
        ("anthropic-ratelimit-output-tokens-limit", "400000"),
        ("anthropic-ratelimit-output-tokens-remaining", "400000"),
        ("anthropic-ratelimit-output-tokens-reset", _rfc3339(0.0)),
    ]
    return encode_headers(pairs)

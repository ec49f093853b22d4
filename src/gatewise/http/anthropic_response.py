"""Canonical response and errors -> Anthropic Messages JSON (the door's outbound half).

- ``id`` is ``msg_`` plus the request id's tail, so a message and its request
  correlate in logs; ``model`` is the name the client asked for.
- This is the translated path: the door relays an Anthropic upstream's own body
  instead while the call allows raw relay (``http/anthropic.py``).
- ``stop_reason`` comes from ``formats.anthropic.STOP_REASON_FROM_FINISH``; when
  the choice carries the matched stop string (``Choice.stop_sequence``, which
  Anthropic upstreams report) it is ``stop_sequence`` with that string.
  OpenAI-family upstreams do not report the matched string: a stop string ends
  the text as ``end_turn`` with ``stop_sequence`` null.
- Thinking: the choice's ``thinking_blocks`` (an Anthropic upstream's thinking and
  redacted-thinking blocks, with signatures) come first, as they were. Reasoning
  without blocks (``reasoning_content`` alone: Gemini, OpenAI-compatible servers)
  is not shown: it has no signature, and Anthropic rejects unsigned thinking when
  a client sends it back.
- Citations have no canonical form and are lost on this path.
- Tool-call arguments are parsed into ``input``; arguments that are not a JSON
  object (a model's malformed output) are kept as ``{"_raw": "<arguments>"}`` so
  the client still sees what the model produced instead of a gateway error.
- A refusal becomes a text block (``stop_reason`` ``refusal`` when the upstream
  said ``content_filter``).
"""

from __future__ import annotations

from typing import Any

import orjson

from gatewise.core.errors import GatewayError
from gatewise.core.types import ChatResponse, JSONObject, ToolCall
from gatewise.formats.anthropic import (
    STATUS_FROM_ERROR_TYPE,
    STOP_REASON_FROM_FINISH,
    anthropic_usage,
    error_type_for_status,
)


def message_id(request_id: str) -> str:
    return "msg_" + (request_id[4:] if request_id.startswith("req_") else request_id)


def stop_reason(
    finish_reason: str | None, has_tool_calls: bool, stop_sequence: str | None = None
) -> str:
    if finish_reason is None:
        return "tool_use" if has_tool_calls else "end_turn"
    if stop_sequence is not None and finish_reason == "stop":
        return "stop_sequence"
    return STOP_REASON_FROM_FINISH.get(finish_reason, "end_turn")


def tool_input(arguments: str | None) -> Any:
    """A tool call's JSON arguments as Anthropic's ``input`` object (see module docstring)."""
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": arguments}


def _tool_use(call: ToolCall) -> JSONObject:
    return {
        "type": "tool_use",
        "id": call.id,
        "name": call.function.name or "",
        "input": tool_input(call.function.arguments),
    }


def encode_message(response: ChatResponse, model: str, ident: str) -> bytes:
    """The Anthropic ``Message`` for a canonical response (first choice)."""
    content: list[JSONObject] = []
    finish: str | None = None
    calls: list[ToolCall] = []
    sequence: str | None = None
    if response.choices:
        choice = response.choices[0]
        finish = choice.finish_reason
        message = choice.message
        if message.thinking_blocks:
            content += message.thinking_blocks
        text = message.content or message.refusal
        if text:
            content.append({"type": "text", "text": text})
        calls = message.tool_calls or []
        content += [_tool_use(call) for call in calls]
        matched = choice.stop_sequence
        if isinstance(matched, str):
            sequence = matched
    return orjson.dumps(
        {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason(finish, bool(calls), sequence),
            "stop_sequence": sequence,
            "usage": full_usage(anthropic_usage(response.usage)),
        }
    )


def full_usage(usage: dict[str, int]) -> dict[str, int]:
    """Anthropic always reports the cache fields; fill them in when usage is unknown."""
    usage.setdefault("cache_creation_input_tokens", 0)
    usage.setdefault("cache_read_input_tokens", 0)
    return usage


# --- errors ----------------------------------------------------------------------


def error_type(error: GatewayError) -> str:
    """Anthropic's ``error.type``: by status, unless an upstream already named a specific one.

    The gateway's own errors carry OpenAI-style types (``invalid_request_error`` for
    a 404 too), so the status decides; an error relayed from an Anthropic upstream
    keeps its precise type (``overloaded_error`` on a mid-stream event ...).
    """
    if error.type in STATUS_FROM_ERROR_TYPE and error.type != "invalid_request_error":
        return error.type
    if error.type == "guardrail_violation":
        return error.type  # the gateway's own: says a guardrail refused, not a malformed call
    return error_type_for_status(error.status)


def error_body(error: GatewayError, request_id: str) -> bytes:
    """Anthropic's envelope: ``{"type":"error","error":{"type","message"},"request_id"}``."""
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": error_type(error), "message": error.message},
            "request_id": request_id,
        }
    )


def stream_error_event(error: GatewayError, request_id: str) -> bytes:
    """A mid-stream failure; the anthropic SDK raises on ``event: error``."""
    return b"event: error\ndata: " + error_body(error, request_id) + b"\n\n"

"""Anthropic Messages wire format: the mappings both directions share.

The provider (``providers/anthropic.py``: canonical -> Anthropic upstream) and
the front door (``http/anthropic.py``: Anthropic clients -> canonical) each
translate their own direction; the facts they share live here once.
Source: Anthropic's Messages API reference (docs.anthropic.com/en/api/messages,
/messages-streaming, /errors).
"""

from __future__ import annotations

from gatewise.core.types import Usage

ANTHROPIC_VERSION = "2023-06-01"

# Anthropic stop_reason -> OpenAI finish_reason.
FINISH_REASON_FROM_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# OpenAI finish_reason -> Anthropic stop_reason (``stop`` becomes ``stop_sequence``
# instead when a stop sequence matched; the front door knows which).
STOP_REASON_FROM_FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# Anthropic error type -> HTTP status.
STATUS_FROM_ERROR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


# HTTP status -> Anthropic error type: the table above, read backwards.
_ERROR_TYPE_FROM_STATUS = {status: kind for kind, status in STATUS_FROM_ERROR_TYPE.items()}


def error_type_for_status(status: int) -> str:
    """The Anthropic ``error.type`` a client expects for an HTTP status."""
    kind = _ERROR_TYPE_FROM_STATUS.get(status)
    if kind is not None:
        return kind
    return "api_error" if status >= 500 else "invalid_request_error"


def usage_from_anthropic(
    input_tokens: int,
    output_tokens: int,
    cache_creation_input_tokens: int = 0,
    cache_read_input_tokens: int = 0,
) -> Usage:
    """Canonical usage: prompt tokens include Anthropic's cache reads and writes."""
    prompt = input_tokens + cache_creation_input_tokens + cache_read_input_tokens
    details = None
    if cache_creation_input_tokens or cache_read_input_tokens:
        details = {
            "cached_tokens": cache_read_input_tokens,
            "cache_write_tokens": cache_creation_input_tokens,
        }
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=output_tokens,
        total_tokens=prompt + output_tokens,
        prompt_tokens_details=details,
    )


def anthropic_usage(usage: Usage | None) -> dict[str, int]:
    """Anthropic usage fields from canonical usage (the reverse of ``usage_from_anthropic``)."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    details = usage.prompt_tokens_details or {}
    cached = int(details.get("cached_tokens") or 0)
    written = int(details.get("cache_write_tokens") or 0)
    return {
        "input_tokens": max(usage.prompt_tokens - cached - written, 0),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }

"""Rendering ``GatewayError`` in each front door's wire format."""

from __future__ import annotations

import contextlib

import orjson

from gatewise.core.errors import GatewayError


def openai_error_body(error: GatewayError) -> bytes:
    """OpenAI's envelope: ``{"error": {"message", "type", "param", "code"}}``."""
    return orjson.dumps(
        {
            "error": {
                "message": error.message,
                "type": error.type,
                "param": error.param,
                "code": error.code,
            }
        }
    )


def openai_stream_error_event(error: GatewayError) -> bytes:
    """A mid-stream failure as an SSE event; the openai SDK raises ``APIError`` on it."""
    return b"data: " + openai_error_body(error) + b"\n\n"


def openai_error_headers(error: GatewayError) -> dict[str, str]:
    headers = dict(error.headers)
    if error.status == 429 and "retry-after" in headers and "retry-after-ms" not in headers:
        with contextlib.suppress(ValueError):  # an HTTP-date retry-after is relayed as it is
            headers["retry-after-ms"] = str(int(float(headers["retry-after"]) * 1000))
    return headers

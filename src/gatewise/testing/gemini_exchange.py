"""One request/response pair at the fake Gemini upstream: Google's answering conventions.

The pacing, resets and streaming of ``openai_exchange.Exchange`` are the same for
every wire format; what differs is here: Google's headers, the ``x-goog-api-key``
header or ``?key=`` credential, Google's error envelope (a 429 carries RetryInfo
in its body, not a ``retry-after`` header), and the two stream framings (SSE with
``alt=sse``, else one JSON array). ``GeminiScenario`` adds the safety outcomes
the generic ``Scenario`` cannot express.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, fields
from typing import Any

from gatewise.testing import gemini_wire as wire
from gatewise.testing.httpserver import encode_headers
from gatewise.testing.openai_exchange import Exchange
from gatewise.testing.scenario import Scenario, parse_markers

__all__ = ["GeminiExchange", "GeminiScenario", "parse_gemini_markers"]

JSON = b"application/json; charset=UTF-8"
SSE = b"text/event-stream"
_OPENAI_SSE = b"text/event-stream; charset=utf-8"  # what Exchange.stream asks for
_FIXED = encode_headers(
    [
        ("vary", "Origin, X-Origin, Referer"),
        ("server", "scaffolding on HTTPServer2"),
        ("x-xss-protection", "0"),
        ("x-frame-options", "SAMEORIGIN"),
        ("x-content-type-options", "nosniff"),
    ]
)
_GEMINI_MARKER = re.compile(r"\[\[fake:(finish_reason|block_reason)=([A-Za-z_]+)\]\]")


@dataclass(frozen=True, slots=True)
class GeminiScenario(Scenario):
    """A ``Scenario`` plus Gemini's safety outcomes.

    - ``finish_reason``: end every candidate with this ``finishReason`` (``SAFETY``,
      ``RECITATION`` ... answer with no content and blocked safety ratings).
    - ``block_reason``: block the prompt: ``promptFeedback.blockReason`` and no candidates.

    In-band: ``[[fake:finish_reason=SAFETY]]``, ``[[fake:block_reason=SAFETY]]``.
    """

    finish_reason: str | None = None
    block_reason: str | None = None


def parse_gemini_markers(text: str) -> Scenario | None:
    """``scenario.parse_markers`` plus the two Gemini-only markers (MarkerError if unknown)."""
    extra = {key: value.upper() for key, value in _GEMINI_MARKER.findall(text)}
    base = parse_markers(_GEMINI_MARKER.sub("", text) if extra else text)
    if not extra:
        return base
    inherited = {f.name: getattr(base, f.name) for f in fields(Scenario)} if base else {}
    return GeminiScenario(**inherited, **extra)


class GeminiExchange(Exchange):
    """A request at the fake Gemini upstream: ``kind`` is the API method, ``target`` the model."""

    __slots__ = ("sse",)
    invalid_json_message = "Invalid JSON payload received. Expected an object."
    garbage_body = wire.GARBAGE_BODY
    garbage_events = wire.GARBAGE_EVENTS

    def __init__(self, *args: Any, sse: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sse = sse

    def received_key(self) -> str | None:
        """``x-goog-api-key``, else the ``key`` query parameter."""
        key = self.request.headers.get("x-goog-api-key")
        return key if key is not None else self.request.query.get("key")

    def headers(
        self,
        content_type: bytes,
        ratelimit: bool = False,
        extra: bytes = b"",
        ratelimit_block: bytes | None = None,
    ) -> bytes:
        if content_type == _OPENAI_SSE:  # a stream: SSE, or the JSON-array form
            content_type = SSE if self.sse else JSON
        elif not content_type.startswith(b"text/"):
            content_type = JSON
        elapsed_ms = int((time.perf_counter() - self.started) * 1000)
        return b"content-type: %s\r\n%sserver-timing: gfet4t7; dur=%d\r\n%s" % (
            content_type,
            _FIXED,
            elapsed_ms,
            extra,
        )

    def error(self, status: int, message: str, **kwargs: Any) -> None:
        self.send(status, wire.error_body(status, message, **kwargs))

    def bad_request(self, message: str, param: str | None = None, code: str | None = None) -> None:
        self.error(400, message)

    def send_status(self, status: int, scenario: Scenario, model: str, extra: bytes) -> None:
        """Google's error body (a 429 carries RetryInfo in it, no ``retry-after`` header)."""
        body = wire.status_error(
            status,
            model=model,
            retry_after=scenario.retry_after or 1.0,
            message=scenario.error_message,
            status_name=scenario.error_type,
        )
        self.send(status, body, extra=extra)

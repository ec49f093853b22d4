"""One request/response pair at the fake Anthropic upstream: Anthropic's answering conventions.

The pacing, resets and streaming of ``openai_exchange.Exchange`` are the same for
every wire format; what differs is here: ``request-id`` and
``anthropic-organization-id`` headers, ``anthropic-ratelimit-*`` headers, the
``x-api-key`` credential, and Anthropic's error envelope (429s add ``retry-after``,
529 is ``overloaded_error``).
"""

from __future__ import annotations

import math

from gatewise.testing import anthropic_wire as wire
from gatewise.testing.openai_exchange import Exchange
from gatewise.testing.scenario import Scenario

__all__ = ["AnthropicExchange"]

ANTHROPIC = "anthropic"
_ORGANIZATION = b"anthropic-organization-id: " + wire.ORGANIZATION_ID.encode() + b"\r\n"


class AnthropicExchange(Exchange):
    """A routed request at the fake Anthropic upstream and its response writer."""

    __slots__ = ()
    invalid_json_message = wire.INVALID_JSON_MESSAGE
    garbage_body = wire.GARBAGE_BODY
    garbage_events = wire.GARBAGE_EVENTS

    @property
    def rid(self) -> str:
        return self.request_id.decode()

    def received_key(self) -> str | None:
        """``x-api-key``, or an OAuth-style ``Authorization: Bearer`` token."""
        key = self.request.headers.get("x-api-key")
        return key if key is not None else super().received_key()

    def headers(
        self,
        content_type: bytes,
        ratelimit: bool = False,
        extra: bytes = b"",
        ratelimit_block: bytes | None = None,
    ) -> bytes:
        head = b"content-type: %s\r\nrequest-id: %s\r\n%s" % (
            content_type,
            self.request_id,
            _ORGANIZATION,
        )
        if ratelimit_block is not None:
            head += ratelimit_block
        elif ratelimit or self.ratelimit:
            head += wire.ratelimit_headers()
        return head + extra

    def error(self, status: int, type_: str, message: str) -> None:
        self.send(status, wire.error_body(type_, message, self.rid))

    def bad_request(self, message: str, param: str | None = None, code: str | None = None) -> None:
        self.error(400, "invalid_request_error", message)

    def send_status(self, status: int, scenario: Scenario, model: str, extra: bytes) -> None:
        """Anthropic's error body; a 429 adds ``retry-after`` and exhausted rate-limit headers."""
        retry = scenario.retry_after
        if retry is None and status == 429:
            retry = 1.0
        if retry is not None:
            extra += b"retry-after: %d\r\n" % math.ceil(retry)
        block = wire.ratelimit_headers(retry or 1.0) if status == 429 else None
        body = wire.status_error(
            status,
            self.rid,
            model=model,
            message=scenario.error_message,
            type_=scenario.error_type,
        )
        self.send(
            status, body, ratelimit=scenario.ratelimit_headers, extra=extra, ratelimit_block=block
        )

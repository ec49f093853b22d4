"""One request/response pair at the fake Anthropic upstream: Anthropic's answering conventions.

The pacing, resets and streaming of ``openai_exchange.Exchange`` are the same for
every wire format; what differs is here: ``request-id`` and
``anthropic-organization-id`` headers, ``anthropic-ratelimit-*`` headers, the
``x-api-key`` credential, and Anthropic's error envelope (429s add ``retry-after``,
529 is ``overloaded_error``).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import orjson

from gatewise.testing import anthropic_wire as wire
from gatewise.testing.httpserver import encode_headers
from gatewise.testing.openai_exchange import Exchange
from gatewise.testing.scenario import Scenario

__all__ = ["AnthropicExchange"]

ANTHROPIC = "anthropic"
_ORGANIZATION = b"anthropic-organization-id: " + wire.ORGANIZATION_ID.encode() + b"\r\n"
JSON = b"application/json"


class AnthropicExchange(Exchange):
    """A routed request at the fake Anthropic upstream and its response writer."""

    __slots__ = ()

    @property
    def rid(self) -> str:
        return self.request_id.decode()

    def received_key(self) -> str | None:
        """``x-api-key``, or an OAuth-style ``Authorization: Bearer`` token."""
        headers = self.request.headers
        key = headers.get("x-api-key")
        if key is not None:
            return key
        auth = headers.get("authorization")
        if auth is not None and auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None

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

    def json_body(self) -> dict[str, Any] | None:
        """The request's JSON object, or None after answering Anthropic's 400 for bad JSON."""
        try:
            body = orjson.loads(self.request.body)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            self.bad_request(wire.INVALID_JSON_MESSAGE)
            return None
        return body

    async def misbehave(self, scenario: Scenario, model: str) -> bool:
        """Apply a scenario's hang, delay and failures; True when the answer is already sent."""
        if scenario.hang:
            await asyncio.get_running_loop().create_future()  # cancelled when the peer leaves
        if scenario.slow_first_byte > 0:
            await asyncio.sleep(scenario.slow_first_byte)
        extra = encode_headers(scenario.headers.items()) if scenario.headers else b""
        status = scenario.error_status
        if status is not None:
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
            head = self.headers(JSON, scenario.ratelimit_headers, extra, block)
            self.response.send(status, (), body, raw_headers=head)
            return True
        if scenario.garbage:
            head = self.headers(JSON, scenario.ratelimit_headers, extra)
            self.response.send(200, (), wire.GARBAGE_BODY, raw_headers=head)
            return True
        if scenario.garbage_stream:
            await self.stream(wire.GARBAGE_EVENTS, scenario)
            return True
        return False

"""One request/response pair at the fake OpenAI upstream: routing facts and answering conventions.

Every answer carries OpenAI's headers (``x-request-id``, ``openai-processing-ms``,
optionally ``x-ratelimit-*``), errors use OpenAI's envelope, and a ``Scenario``
can bend the answer: delay it, fail it, garble it, cut it with a reset, or never
send it. Keeping that here lets the upstream module read as plain route logic.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable
from typing import Any

import orjson

from gatewise.testing import openai_wire as wire
from gatewise.testing.httpserver import Request, Response, encode_headers
from gatewise.testing.scenario import Scenario

__all__ = ["AZURE", "AZURE_V1", "CHAT", "EMBEDDINGS", "MODEL", "MODELS", "OPENAI", "Exchange"]

OPENAI, AZURE, AZURE_V1 = "openai", "azure", "azure_v1"
CHAT, EMBEDDINGS, MODELS, MODEL = "chat", "embeddings", "models", "model"
_STATIC_ROUTES: dict[str, tuple[str, str]] = {
    "/v1/chat/completions": (OPENAI, CHAT),
    "/v1/embeddings": (OPENAI, EMBEDDINGS),
    "/v1/models": (OPENAI, MODELS),
    "/openai/v1/chat/completions": (AZURE_V1, CHAT),
    "/openai/v1/embeddings": (AZURE_V1, EMBEDDINGS),
    "/openai/v1/models": (AZURE_V1, MODELS),
}
_AZURE_KINDS = {"chat/completions": CHAT, "embeddings": EMBEDDINGS}
_MODEL_PREFIXES = (("/v1/models/", OPENAI), ("/openai/v1/models/", AZURE_V1))
JSON = b"application/json"
SSE = b"text/event-stream; charset=utf-8"
RATELIMIT_OK = encode_headers(
    [
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-limit-tokens", "30000000"),
        ("x-ratelimit-remaining-requests", "9999"),
        ("x-ratelimit-remaining-tokens", "29999950"),
        ("x-ratelimit-reset-requests", "6ms"),
        ("x-ratelimit-reset-tokens", "0s"),
    ]
)


def ratelimit_exhausted(retry_after: float) -> bytes:
    return encode_headers(
        [
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-limit-tokens", "150000"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-remaining-tokens", "149950"),
            ("x-ratelimit-reset-requests", f"{retry_after:g}s"),
            ("x-ratelimit-reset-tokens", "20ms"),
        ]
    )


def route(path: str, method: str) -> tuple[str, str, str] | None:
    """(family, kind, target) for a known route; target is the deployment or model id."""
    static = _STATIC_ROUTES.get(path)
    if static is not None:
        family, kind = static
        return (family, kind, "") if method == ("GET" if kind == MODELS else "POST") else None
    if method == "GET":
        for prefix, family in _MODEL_PREFIXES:
            if path.startswith(prefix) and len(path) > len(prefix):
                return family, MODEL, path[len(prefix) :]
    elif method == "POST" and path.startswith("/openai/deployments/"):
        deployment, _, rest = path[len("/openai/deployments/") :].partition("/")
        azure_kind = _AZURE_KINDS.get(rest)
        if deployment and azure_kind is not None:
            return AZURE, azure_kind, deployment
    return None


class Exchange:
    """A routed request and its response writer, with OpenAI's answering conventions.

    Other wire formats subclass it and override ``received_key``, ``headers``,
    ``bad_request``, ``send_status`` and the class-level bodies below; pacing,
    resets, streaming and the rest of ``misbehave`` are the same for all.
    """

    invalid_json_message: str = wire.INVALID_JSON_MESSAGE
    garbage_body: bytes = wire.GARBAGE_BODY
    garbage_events: tuple[bytes, ...] = wire.GARBAGE_EVENTS

    __slots__ = (
        "family",
        "kind",
        "ratelimit",
        "request",
        "request_id",
        "response",
        "started",
        "target",
    )

    def __init__(
        self,
        request: Request,
        response: Response,
        request_id: bytes,
        family: str = OPENAI,
        kind: str = "",
        target: str = "",
        *,
        ratelimit: bool = False,
    ) -> None:
        self.request = request
        self.response = response
        self.request_id = request_id
        self.family = family
        self.kind = kind
        self.target = target
        self.ratelimit = ratelimit
        self.started = time.perf_counter()

    @property
    def azure(self) -> bool:
        return self.family != OPENAI

    def received_key(self) -> str | None:
        """The credential the caller sent, read where this route family expects it."""
        headers = self.request.headers
        if self.family == AZURE or (self.family == AZURE_V1 and "api-key" in headers):
            return headers.get("api-key")
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
        """The header block: OpenAI's ids and timing, rate-limit headers when enabled."""
        elapsed_ms = int((time.perf_counter() - self.started) * 1000)
        head = (
            b"content-type: %s\r\nx-request-id: %s\r\nopenai-processing-ms: %d\r\n"
            b"openai-version: 2020-10-01\r\n" % (content_type, self.request_id, elapsed_ms)
        )
        if ratelimit_block is not None:
            head += ratelimit_block
        elif ratelimit or self.ratelimit:
            head += RATELIMIT_OK
        return head + extra

    def send(
        self,
        status: int,
        body: bytes,
        *,
        ratelimit: bool = False,
        extra: bytes = b"",
        ratelimit_block: bytes | None = None,
    ) -> None:
        head = self.headers(JSON, ratelimit, extra, ratelimit_block)
        self.response.send(status, (), body, raw_headers=head)

    def bad_request(self, message: str, param: str | None = None, code: str | None = None) -> None:
        self.send(400, wire.error_body(message, "invalid_request_error", param, code))

    def json_body(self) -> dict[str, Any] | None:
        """The request's JSON object, or None after answering the format's 400 for bad JSON."""
        try:
            body = orjson.loads(self.request.body)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            self.bad_request(self.invalid_json_message)
            return None
        return body

    # -- scenarios ----------------------------------------------------------------
    async def misbehave(self, scenario: Scenario, model: str) -> bool:
        """Apply a scenario's hang, delay and failures; True when the answer is already sent."""
        if scenario.hang:
            await asyncio.get_running_loop().create_future()  # cancelled when the peer leaves
        if scenario.slow_first_byte > 0:
            await asyncio.sleep(scenario.slow_first_byte)
        extra = _extra_headers(scenario)
        status = scenario.error_status
        if status is not None:
            self.send_status(status, scenario, model, extra)
            return True
        if scenario.garbage:
            self.send(200, self.garbage_body, ratelimit=scenario.ratelimit_headers, extra=extra)
            return True
        if scenario.garbage_stream:
            await self.stream(self.garbage_events, scenario)
            return True
        return False

    def send_status(self, status: int, scenario: Scenario, model: str, extra: bytes) -> None:
        """Answer the scenario's error status with this format's error body and headers."""
        retry = scenario.retry_after
        if retry is None and status == 429:
            retry = 1.0
        if retry is not None:
            extra += b"retry-after: %d\r\nretry-after-ms: %d\r\n" % (
                math.ceil(retry),
                round(retry * 1000),
            )
        block = ratelimit_exhausted(retry or 1.0) if status == 429 else None
        body = wire.status_error(
            status,
            model=model,
            retry_after=retry or 1.0,
            key=self.received_key() or "",
            message=scenario.error_message,
            type_=scenario.error_type,
            code=scenario.error_code,
        )
        self.send(
            status, body, ratelimit=scenario.ratelimit_headers, extra=extra, ratelimit_block=block
        )

    async def send_ok(self, body: bytes, scenario: Scenario | None) -> None:
        """Send a 200 JSON body (or headers, half the body and a reset or silence, if the
        scenario says so)."""
        if scenario is None:
            return self.send(200, body)
        head = self.headers(JSON, scenario.ratelimit_headers, _extra_headers(scenario))
        if scenario.reset_after is None and not scenario.stall:
            return self.response.send(200, (), body, raw_headers=head)
        self.response.start_stream(200, (), content_length=len(body), raw_headers=head)
        await self.response.write(body[: len(body) // 2])
        if scenario.stall:
            await asyncio.get_running_loop().create_future()  # cancelled when the peer leaves
        await asyncio.sleep(0)
        self.response.abort()

    async def stream(
        self, events: Iterable[bytes], scenario: Scenario | None, chunk_delay: float = 0.0
    ) -> None:
        """Send SSE events, paced by ``chunk_delay`` and cut by the scenario's ``reset_after``."""
        reset_after: int | None = None
        ratelimit, extra = False, b""
        if scenario is not None:
            if scenario.chunk_delay is not None:
                chunk_delay = scenario.chunk_delay
            reset_after, ratelimit = scenario.reset_after, scenario.ratelimit_headers
            extra = _extra_headers(scenario)
        response = self.response
        response.start_stream(200, (), raw_headers=self.headers(SSE, ratelimit, extra))
        for written, event in enumerate(events):
            if reset_after is not None and written >= reset_after:
                await asyncio.sleep(0)  # let the written events leave before the reset
                return response.abort()
            if chunk_delay and written:
                await asyncio.sleep(chunk_delay)
            await response.write(event)
            if response.disconnected:
                return
        response.end()


def _extra_headers(scenario: Scenario) -> bytes:
    return encode_headers(scenario.headers.items()) if scenario.headers else b""

"""Pooled upstream HTTP with timeouts, and the mapping of transport failures to errors.

One ``HTTPTransport`` per provider: an aiohttp session with a keep-alive pool.
Four timeouts apply: connect, first byte (request sent -> response headers),
idle (silence between two reads of the body or stream) and total.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import aiohttp

from gatewise.config.models import Timeouts
from gatewise.core.context import Attempt, RequestContext
from gatewise.core.errors import (
    GatewayError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gatewise.formats.openai import upstream_error_fields

# Headers worth relaying from an upstream error: they drive the SDKs' retry logic.
RELAYED_ERROR_HEADERS = (
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
)

_CREDENTIAL_SHAPES = re.compile(
    r"(sk-[A-Za-z0-9_\-*]{6,}|sk-ant-[A-Za-z0-9_\-*]{6,}|AIza[0-9A-Za-z_\-]{20,}"
    r"|gw-[A-Za-z0-9_\-]{8,}|Bearer\s+\S+)"
)


class Redactor:
    """Removes this provider's secrets (and anything shaped like a key) from upstream text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return _CREDENTIAL_SHAPES.sub("[redacted]", text)


class HTTPTransport:
    """The pooled HTTP client of one provider."""

    def __init__(
        self,
        provider: str,
        timeouts: Timeouts,
        max_connections: int,
        headers: Mapping[str, str],
        redact: Redactor,
    ) -> None:
        self.provider = provider
        self.timeouts = timeouts
        self.max_connections = max_connections
        self.headers = dict(headers)
        self.redact = redact
        self._session: aiohttp.ClientSession | None = None
        self._client_timeout = aiohttp.ClientTimeout(
            total=timeouts.total,
            sock_connect=timeouts.connect,
            sock_read=timeouts.idle,
        )

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            limit_per_host=self.max_connections,
            keepalive_timeout=30,
            ttl_dns_cache=300,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._client_timeout,
            headers=self.headers,
            skip_auto_headers=("User-Agent",),
            auto_decompress=True,
            raise_for_status=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"provider {self.provider} used before start()")
        return self._session

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        attempt: Attempt,
    ) -> aiohttp.ClientResponse:
        """Send a POST and return once the response headers arrived (status not checked)."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeouts.first_byte):
                response = await self.session.post(url, data=body, headers=headers)
        except BaseException as exc:
            attempt.duration_ms = (time.perf_counter() - started) * 1000.0
            raise self.translate(exc, attempt, "waiting for the upstream's response") from None
        attempt.status = response.status
        return response

    async def read_body(self, response: aiohttp.ClientResponse, attempt: Attempt) -> bytes:
        try:
            return await response.read()
        except BaseException as exc:
            raise self.translate(exc, attempt, "reading the upstream's response") from None
        finally:
            response.release()

    async def iter_chunks(
        self, response: aiohttp.ClientResponse, attempt: Attempt
    ) -> AsyncIterator[bytes]:
        """Yield the body as it arrives; the idle timeout applies between reads."""
        content = response.content
        try:
            while True:
                data = await content.readany()
                if not data:
                    return
                yield data
        except GeneratorExit:
            raise
        except BaseException as exc:
            raise self.translate(exc, attempt, "streaming the upstream's response") from None

    def translate(self, exc: BaseException, attempt: Attempt, doing: str) -> BaseException:
        """Map a transport exception to a ``GatewayError`` (cancellation passes through)."""
        if isinstance(exc, GatewayError | asyncio.CancelledError | GeneratorExit):
            return exc
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            error: GatewayError = UpstreamTimeoutError(
                f"Timed out connecting to the upstream provider '{self.provider}'."
            )
        elif isinstance(exc, TimeoutError | asyncio.TimeoutError):
            error = UpstreamTimeoutError(
                f"The upstream provider '{self.provider}' timed out while {doing}."
            )
        elif isinstance(exc, aiohttp.ClientConnectorError):
            error = UpstreamUnavailableError(
                f"Could not connect to the upstream provider '{self.provider}'."
            )
        elif isinstance(exc, aiohttp.ClientError | OSError):
            error = UpstreamUnavailableError(
                f"The connection to the upstream provider '{self.provider}' failed while {doing}."
            )
        else:
            return exc
        attempt.error = error.code
        return error

    def error_from_response(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> UpstreamError:
        """An upstream error status, relayed with its status and message, minus credentials."""
        message, type_, code, param = upstream_error_fields(body)
        if not message:
            message = f"The upstream provider '{self.provider}' answered HTTP {status}."
        relayed = {k: headers[k] for k in RELAYED_ERROR_HEADERS if k in headers}
        return UpstreamError(
            self.redact(message)[:2000],
            status=status,
            type=type_ or _type_for_status(status),
            code=code,
            param=param,
            headers=relayed,
        )


def _type_for_status(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def lower_headers(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}

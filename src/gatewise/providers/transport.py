"""Pooled upstream HTTP with timeouts, and the mapping of transport failures to errors.

One ``HTTPTransport`` per provider: a keep-alive pool (``http1.HTTPClient``)
and the provider's fixed headers, pre-encoded once. Four timeouts apply:
connect, first byte (request sent -> response head), idle (silence between two
reads of the body or stream) and total.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from gatewise import __version__
from gatewise.config.providers import Timeouts
from gatewise.core.errors import (
    GatewayError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gatewise.formats.openai import upstream_error_fields
from gatewise.net.http1 import (
    ClientError,
    ConnectError,
    ConnectTimeout,
    HTTPClient,
    Origin,
    ProtocolError,
    Response,
)
from gatewise.net.proxy import ProxyResolver
from gatewise.observe.traceparent import UPSTREAM_TRACE
from gatewise.routing.sink import observe

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


# Builds the error for an upstream's non-200 answer: (status, headers, body) -> error.
ErrorMapper = Callable[[int, Mapping[str, str], bytes], GatewayError]


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
    """The pooled HTTP client of one provider, with its fixed headers and timeouts."""

    def __init__(
        self,
        provider: str,
        timeouts: Timeouts,
        max_connections: int,
        headers: Mapping[str, str],
        redact: Redactor,
        proxy: ProxyResolver | None = None,
    ) -> None:
        self.provider = provider
        self._proxy = proxy
        self.timeouts = timeouts
        self.max_connections = max_connections
        self.redact = redact
        self._fixed_headers = b"".join(
            f"{name}: {value}\r\n".encode("latin-1") for name, value in _with_defaults(headers)
        )
        self._client: HTTPClient | None = None
        self._targets: dict[str, tuple[Origin, bytes]] = {}

    async def start(self) -> None:
        self._client = HTTPClient(
            limit=self.max_connections, connect_timeout=self.timeouts.connect, proxy=self._proxy
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _target(self, url: str) -> tuple[Origin, bytes]:
        """The origin and the head's first lines for ``url`` (cached: URLs repeat)."""
        target = self._targets.get(url)
        if target is None:
            origin = Origin(url)
            parts = urlsplit(url)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            start = f"POST {path} HTTP/1.1\r\nhost: {origin.host_header}\r\n".encode("latin-1")
            target = self._targets[url] = (origin, start + self._fixed_headers)
        return target

    async def post(self, url: str, body: bytes) -> Response:
        """Send a POST and return once the response head arrived (status not checked)."""
        client = self._client
        if client is None:
            raise RuntimeError(f"provider {self.provider} used before start()")
        origin, head = self._target(url)
        trace = UPSTREAM_TRACE.get()  # the attempt's traceparent, if any
        if trace is not None:
            head += trace
        head += b"content-length: " + str(len(body)).encode("ascii") + b"\r\n\r\n"
        timeouts = self.timeouts
        try:
            response = await client.request(
                origin,
                head,
                body,
                first_byte_timeout=timeouts.first_byte,
                idle_timeout=timeouts.idle,
                total_timeout=timeouts.total,
            )
        except BaseException as exc:
            raise self.translate(exc, "waiting for the upstream's response") from None
        observe(response.headers)  # rate-limit headroom, for the router
        return response

    async def call(self, url: str, body: bytes, error: ErrorMapper) -> bytes:
        """POST and read the reply: the body of a 200, else ``error(...)`` raised."""
        response = await self.post(url, body)
        data = await self.read_body(response)
        if response.status != 200:
            raise error(response.status, response.headers, data)
        return data

    async def open_stream(self, url: str, body: bytes, error: ErrorMapper) -> Response:
        """POST a streamed request; returns once the upstream answered 200 with an event
        stream (another status raises ``error(...)``)."""
        response = await self.post(url, body)
        if response.status != 200:
            data = await self.read_body(response)
            raise error(response.status, response.headers, data)
        if "text/event-stream" not in response.headers.get("content-type", ""):
            response.close()
            raise UpstreamProtocolError(
                "The upstream answered a streamed request without an event stream."
            )
        return response

    async def read_body(self, response: Response) -> bytes:
        try:
            return await response.read()
        except BaseException as exc:
            raise self.translate(exc, "reading the upstream's response") from None

    async def iter_chunks(self, response: Response) -> AsyncIterator[bytes]:
        """Yield the body as it arrives; the idle timeout applies between reads."""
        try:
            async for data in response.iter_chunks():
                yield data
        except GeneratorExit:
            raise
        except BaseException as exc:
            raise self.translate(exc, "streaming the upstream's response") from None

    def translate(self, exc: BaseException, doing: str) -> BaseException:
        """Map a client exception to a ``GatewayError`` (cancellation passes through)."""
        if isinstance(exc, GatewayError | asyncio.CancelledError | GeneratorExit):
            return exc
        if isinstance(exc, ConnectTimeout):
            error: GatewayError = UpstreamTimeoutError(
                f"Timed out connecting to the upstream provider '{self.provider}'."
            )
        elif isinstance(exc, TimeoutError):
            error = UpstreamTimeoutError(
                f"The upstream provider '{self.provider}' timed out while {doing}."
            )
        elif isinstance(exc, ConnectError):
            error = UpstreamUnavailableError(
                f"Could not connect to the upstream provider '{self.provider}'."
            )
        elif isinstance(exc, ProtocolError):
            error = UpstreamProtocolError(
                f"The upstream provider '{self.provider}' sent an invalid HTTP response."
            )
        elif isinstance(exc, ClientError | OSError):
            error = UpstreamUnavailableError(
                f"The connection to the upstream provider '{self.provider}' failed while {doing}."
            )
        else:
            return exc
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
            type=type_ or openai_error_type(status),
            code=code,
            param=param,
            headers=relayed,
        )


def _with_defaults(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The configured headers plus the ones every upstream request carries."""
    merged = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "accept-encoding": "identity",
        "user-agent": f"gatewise/{__version__}",
    }
    merged.update({k.lower(): v for k, v in headers.items()})
    for name, value in merged.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} contains a line break")
    return list(merged.items())


def openai_error_type(status: int) -> str:
    """The OpenAI error ``type`` for an upstream status that came without one."""
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"

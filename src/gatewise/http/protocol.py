"""uvicorn's httptools protocol with coalesced socket writes.

uvicorn writes a response's head and its body with two ``transport.write``
calls; on a loopback or LAN socket each call is a ``send`` system call that
also runs the receiver's TCP path, and the benchmark showed these writes as
the largest single cost per request. Here the transport is wrapped so that
the writes made during one event-loop iteration leave in one system call: a
JSON response (head + body) becomes one write, and stream chunks that are
ready together go out together. Nothing is delayed beyond the end of the
current loop iteration.

Only ``connection_made`` and ``on_headers_complete`` are overridden; everything
else is uvicorn's.

``GatewayCycle`` shortens the response head: uvicorn checks every response
header with two regular expressions and lower-cases its name, about 0.45 µs a
header, and a rate-limited response has eleven. The gateway writes its headers
itself, in lower case, so the same checks run once over all of them, as byte
translations (no regular expression); any header that fails them sends the
response through uvicorn's own path (and its errors). The rate-limit headers
come already framed (the ``FRAMED_HEADERS`` extension this server offers in the
scope): the gateway builds those lines from numbers and fixed names, and they
are written as they are.
"""

from __future__ import annotations

import asyncio
from operator import itemgetter
from typing import Any

from uvicorn._types import ASGISendEvent, HTTPResponseStartEvent
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from gatewise.http.asgi import FRAMED_HEADERS, header_pairs

#: What a header name may hold: a lower-case token (RFC 9110 tchar without upper case).
#: Checked with ``bytes.translate`` (deleting these leaves nothing), five times faster
#: than a regular expression.
_NAME_BYTES = b"abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+.^_`|~-"
#: The control characters a header value must not hold (uvicorn's rule; the tab is allowed).
_CONTROL_BYTES = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])
_NAME = itemgetter(0)
_VALUE = itemgetter(1)
#: Headers that decide how the body is framed, or whether the connection stays open.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection"})
#: ``(name, value)`` to ``name: value`` (the line ends are joined in between).
_HEADER_LINE = b": ".join


class CoalescingTransport:
    """Buffers writes and flushes them once per loop iteration; delegates the rest."""

    __slots__ = ("_buffer", "_loop", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer.append(bytes(data))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        buffer = self._buffer
        if not buffer:
            return
        data = buffer[0] if len(buffer) == 1 else b"".join(buffer)
        buffer.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._buffer.clear()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._buffer))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        real: Any = transport
        super().connection_made(CoalescingTransport(real, self.loop))  # type: ignore[arg-type]

    def on_headers_complete(self) -> None:
        # This server writes header lines the app framed itself (see ``GatewayCycle``).
        self.scope["extensions"] = {FRAMED_HEADERS: {}}
        super().on_headers_complete()
        cycle = self.cycle
        # The cycle's ASGI task is created but has not run yet: it will send through ours.
        if type(cycle) is RequestResponseCycle:
            cycle.__class__ = GatewayCycle


class GatewayCycle(RequestResponseCycle):
    """uvicorn's request cycle with the header checks done once per response head."""

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] != "http.response.start":
            await super().send(message)
            return
        head = None
        if not (self.response_started or self.disconnected or self.flow.write_paused):
            head = self._head(message)
        if head is None:  # uvicorn's own path (and its checks and errors), with pairs only
            framed = message.get(FRAMED_HEADERS)
            if framed:
                pairs = [*message.get("headers", ()), *header_pairs(framed)]  # type: ignore[arg-type]
                message = {
                    "type": "http.response.start",
                    "status": message["status"],
                    "headers": pairs,
                }
            await super().send(message)
            return
        self.response_started = True
        self.waiting_for_100_continue = False
        if self.access_log:  # as uvicorn logs it (the gateway turns it off: it logs itself)
            scope = self.scope
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                get_client_addr(scope),
                scope["method"],
                get_path_with_query_string(scope),
                scope["http_version"],
                message["status"],
            )
        self.transport.write(head)

    def _head(self, message: HTTPResponseStartEvent) -> bytes | None:
        """The status line and headers, framed as uvicorn frames them; None when a header
        is not a lower-case token name with a clean value.

        Every step is one C-level pass over the headers (a join, a translate, a set
        test); only a response with a framing header loops over them in Python."""
        headers = [*self.default_headers, *message.get("headers", ())]
        names = list(map(_NAME, headers))
        values = b"\t".join(map(_VALUE, headers))
        if b"-".join(names).translate(None, _NAME_BYTES) or len(
            values.translate(None, _CONTROL_BYTES)
        ) != len(values):
            return None
        closing = False
        if not _FRAMING.isdisjoint(names):
            for name, value in headers:
                if name in _FRAMING:
                    closing |= self._frame(name, value)
        lines = [STATUS_LINE[message["status"]], b"\r\n".join(map(_HEADER_LINE, headers))]
        if headers:
            lines.append(b"\r\n")
        framed = message.get(FRAMED_HEADERS)
        if framed:
            lines.append(framed)  # type: ignore[arg-type]
        if not self.keep_alive and not closing:
            lines.append(b"connection: close\r\n")
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and message["status"] not in (204, 304)
        ):
            self.chunked_encoding = True  # neither a length nor an encoding was given
            lines.append(b"transfer-encoding: chunked\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def _frame(self, name: bytes, value: bytes) -> bool:
        """Note a framing header as uvicorn does; True when it closes the connection."""
        if name == b"content-length":
            if self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
        elif name == b"transfer-encoding":
            if value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
        elif b"close" in [token.lower().strip() for token in value.split(b",")]:
            self.keep_alive = False
            return True
        return False

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

The request head is limited (``server.max_header_bytes``, ``server.max_headers``; the
app carries them as ``max_header_bytes`` and ``max_headers``). httptools gathers a header
value by concatenation, so a huge one costs quadratic time on the event loop (64 MB took
4 s of a stalled worker); the bytes of a head are therefore counted as they arrive (one
addition per read) and a head that passes the limit is refused with 431 before more of
it is parsed. The exact size (names and values) is summed only for a head that may be
over the limit. Malformed HTTP gets a 400. Both answer in OpenAI's JSON envelope and
close the connection after a short linger (reading and dropping what the client is still
sending, so that the answer is not lost to a reset).
"""

from __future__ import annotations

import asyncio
from itertools import chain
from operator import itemgetter
from typing import Any

import httptools
import orjson
from uvicorn._types import ASGISendEvent, HTTPResponseStartEvent
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from gatewise.core.context import new_request_id
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
#: The request head's limits when the app carries none (the config's defaults).
DEFAULT_MAX_HEADER_BYTES = 65536
DEFAULT_MAX_HEADERS = 100
#: After refusing a request: how long, and how many bytes, to read and drop before closing.
LINGER_SECONDS = 1.0
LINGER_BYTES = 1 << 20


class CoalescingTransport:
    """Buffers writes and flushes them once per loop iteration; delegates the rest."""

    __slots__ = ("_buffer", "_eof", "_loop", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []
        self._scheduled = False
        self._eof = False

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
        if not (self._eof or self._transport.is_closing()):
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._buffer.clear()
        self._transport.abort()

    def write_eof(self) -> None:
        """Flush, then end the writing side (later writes are dropped, as after close)."""
        self._flush()
        self._eof = True
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._buffer))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _may_end_head(data: bytes) -> bool:
    """Whether a head's blank line may end in ``data`` (or straddle its start)."""
    return b"\n\n" in data or b"\n\r\n" in data or data.startswith((b"\n", b"\r\n"))


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request the protocol refuses."""


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        real: Any = transport
        super().connection_made(CoalescingTransport(real, self.loop))  # type: ignore[arg-type]
        app = self.app
        self._max_head = getattr(app, "max_header_bytes", DEFAULT_MAX_HEADER_BYTES)
        self._max_headers = getattr(app, "max_headers", DEFAULT_MAX_HEADERS)
        #: Whether the next bytes belong to a request head (the connection starts in one).
        self._in_head = True
        #: Bytes of the reads that began inside the current head: all head bytes while it
        #: lasts, an upper bound once it ended (its last read may hold body bytes too).
        self._head_bytes = 0
        #: Bytes of the read in which the previous request ended: a pipelined head may have
        #: begun in it uncounted (0 before the first request).
        self._head_uncounted = 0
        self._read_size = 0
        self._dropping = 0  # > 0 while lingering after a refusal: bytes still to drop

    def data_received(self, data: bytes) -> None:
        # uvicorn's, with the head counted and errors answered by ``_refuse``.
        size = self._read_size = len(data)
        if self._dropping:
            self._dropping -= size
            if self._dropping <= 0:
                self.transport.close()
            return
        if self._in_head:
            seen = self._head_bytes + size
            if seen > self._max_head and not _may_end_head(data):
                # The head does not end in this read and the earlier ones were all head:
                # it is over the limit already.
                self._refuse(431, *self._head_error())
                return
            self._head_bytes = seen
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Refused):
                self._refuse(431, *self._head_error())
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_headers_complete(self) -> None:
        headers = self.headers
        if (
            self._head_bytes + self._head_uncounted > self._max_head
            or len(headers) > self._max_headers
        ) and self._head_too_large():
            raise _Refused()
        self._in_head = False
        # This server writes header lines the app framed itself (see ``GatewayCycle``).
        self.scope["extensions"] = {FRAMED_HEADERS: {}}
        super().on_headers_complete()
        cycle = self.cycle
        # The cycle's ASGI task is created but has not run yet: it will send through ours.
        if type(cycle) is RequestResponseCycle:
            cycle.__class__ = GatewayCycle

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0
        self._head_uncounted = self._read_size

    def _head_too_large(self) -> bool:
        """The exact test: the request line and header lines, as the client framed them
        (give or take optional whitespace)."""
        headers = self.headers
        size = len(self.url) + 16 + sum(map(len, chain.from_iterable(headers))) + 4 * len(headers)
        return size > self._max_head or len(headers) > self._max_headers

    def _head_error(self) -> tuple[str, str]:
        return (
            "request_headers_too_large",
            f"The request headers are larger than this gateway accepts "
            f"({self._max_head} bytes in total, {self._max_headers} headers).",
        )

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "invalid_http_request", msg)

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` in OpenAI's envelope, then drop what the client still sends
        for a moment (or a megabyte) and close."""
        body = orjson.dumps(
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": code,
                }
            }
        )
        lines = [STATUS_LINE[status]]
        lines.extend(b"%s: %s\r\n" % pair for pair in self.server_state.default_headers)
        lines.append(
            b"content-type: application/json\r\ncontent-length: %d\r\n"
            b"x-request-id: %s\r\nconnection: close\r\n\r\n"
            % (len(body), new_request_id().encode("ascii"))
        )
        lines.append(body)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's answer, if it comes, goes nowhere
            cycle.message_event.set()
        transport = self.transport
        transport.write(b"".join(lines))
        self._in_head = False
        self._dropping = LINGER_BYTES
        if transport.can_write_eof():
            transport.write_eof()  # the client sees the end of the answer now
        self.loop.call_later(LINGER_SECONDS, transport.close)


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

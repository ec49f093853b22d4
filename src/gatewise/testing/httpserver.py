"""A minimal, fast HTTP/1.1 server for the fake upstreams.

Why not aiohttp or uvicorn: the fakes share the benchmark machine with the load
generator and the gateway, so every microsecond they spend is stolen from the
thing being measured; and they must misbehave on purpose (reset a connection
mid-body, never answer), which full frameworks make awkward. This is an asyncio
``Protocol`` around ``httptools`` with keep-alive, Content-Length and chunked
request bodies, Content-Length or chunked (SSE) responses and ``abort()``.
Requests on one connection are answered in order (pipelined ones wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import cast
from urllib.parse import parse_qsl, unquote

import httptools

__all__ = ["Handler", "HttpServer", "Request", "Response"]

_log = logging.getLogger(__name__)
_REASONS: dict[int, bytes] = {}
_END_OF_CHUNKS = b"0\r\n\r\n"
_LINGER_ZERO = struct.pack("ii", 1, 0)


def _status_line(status: int) -> bytes:
    line = _REASONS.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        line = f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")
        _REASONS[status] = line
    return line


def encode_headers(headers: Iterable[tuple[str, str]]) -> bytes:
    """Render header pairs as wire bytes (use it to pre-build constant headers)."""
    return "".join([f"{name}: {value}\r\n" for name, value in headers]).encode("latin-1")


class Request:
    """One parsed request: header names are lower-cased, the body is fully read."""

    __slots__ = ("body", "headers", "keep_alive", "method", "path", "query")

    def __init__(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path} {len(self.body)} bytes>"


class Response:
    """Writes one response: whole (``send``) or streamed (``start_stream``/``write``/``end``).

    ``abort()`` resets the connection wherever the response is, which is how the
    fakes simulate an upstream dying mid-stream.
    """

    __slots__ = ("_chunked", "_conn", "_keep_alive", "finished", "started")

    def __init__(self, conn: _Connection, keep_alive: bool) -> None:
        self._conn = conn
        self._keep_alive = keep_alive
        self._chunked = False
        self.started = False
        self.finished = False

    def _head(self, status: int, headers: Iterable[tuple[str, str]], raw: bytes) -> bytes:
        head = _status_line(status) + raw
        if headers:
            head += encode_headers(headers)
        if not self._keep_alive:
            head += b"connection: close\r\n"
        return head

    def send(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        *,
        raw_headers: bytes = b"",
    ) -> None:
        """Send a complete response with a Content-Length.

        ``raw_headers`` is an already-encoded header block (see ``encode_headers``)
        for callers that pre-build their constant headers.
        """
        if self.started:
            raise RuntimeError("response already started")
        self.started = self.finished = True
        head = self._head(status, headers, raw_headers)
        self._conn.write(b"%scontent-length: %d\r\n\r\n%s" % (head, len(body), body))
        self._conn.response_done(self._keep_alive)

    def start_stream(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        *,
        content_length: int | None = None,
        raw_headers: bytes = b"",
    ) -> None:
        """Send the status line and headers; the body follows with ``write``.

        Without ``content_length`` the body is sent with chunked transfer encoding.
        """
        if self.started:
            raise RuntimeError("response already started")
        self.started = True
        head = self._head(status, headers, raw_headers)
        if content_length is None:
            self._chunked = True
            head += b"transfer-encoding: chunked\r\n\r\n"
        else:
            head += b"content-length: %d\r\n\r\n" % content_length
        self._conn.write(head)

    async def write(self, chunk: bytes) -> None:
        """Write part of a streamed body, waiting while the peer is slow to read."""
        if not chunk or self.finished:
            return
        if self._chunked:
            chunk = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        self._conn.write(chunk)
        if self._conn.paused:
            await self._conn.drain()

    def end(self) -> None:
        """Finish a streamed body (the terminating chunk for chunked responses)."""
        if self.finished:
            return
        self.finished = True
        if self._chunked:
            self._conn.write(_END_OF_CHUNKS)
        self._conn.response_done(self._keep_alive)

    def abort(self) -> None:
        """Reset the connection now (TCP RST), dropping anything not yet sent."""
        self.finished = True
        self._conn.abort()

    @property
    def disconnected(self) -> bool:
        """True once the peer has gone (further writes are dropped)."""
        return self._conn.lost


Handler = Callable[[Request, Response], Awaitable[None]]


class _Connection(asyncio.Protocol):
    """One client connection: parses requests and runs the handler for each in turn."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._handler = server.handler
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self._pending: deque[Request] = deque()
        self._drain: asyncio.Future[None] | None = None
        self.paused = False
        self.lost = False

    # -- transport events ---------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence the cast.
        self._transport = cast(asyncio.Transport, transport)
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._server.connections.discard(self)
        self._pending.clear()
        if self._task is not None:
            self._task.cancel()
        self._wake_drain()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(b"HTTP/1.1 501 Not Implemented\r\n")
        except httptools.HttpParserError:
            self._reject(b"HTTP/1.1 400 Bad Request\r\n")

    def eof_received(self) -> bool | None:
        # The client closed its side: treat it as gone (the transport closes, which
        # cancels a running handler), so a hanging or streaming answer ends with it.
        return None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_drain()

    # -- httptools callbacks --------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._raw_headers = []
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        raw = self._raw_headers
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}
        if len(headers) != len(raw):  # a repeated header: join its values, as HTTP allows
            headers = {}
            for name, value in raw:
                key, text = name.decode("latin-1").lower(), value.decode("latin-1")
                headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self._headers = headers
        if "expect" in headers and headers["expect"].lower() == "100-continue":
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        url = httptools.parse_url(self._url)
        path = url.path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        raw_query = url.query
        query = dict(parse_qsl(raw_query.decode("latin-1"))) if raw_query else {}
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = Request(
            parser.get_method().decode("ascii"),
            path,
            query,
            self._headers,
            body,
            parser.should_keep_alive(),
        )
        if self._task is None:
            self._start(request)
        else:
            self._pending.append(request)

    # -- request running --------------------------------------------------------
    def _start(self, request: Request) -> None:
        response = Response(self, request.keep_alive)
        self._task = asyncio.get_running_loop().create_task(self._run(request, response))

    async def _run(self, request: Request, response: Response) -> None:
        try:
            await self._handler(request, response)
        except asyncio.CancelledError:
            response.finished = True
            raise
        except Exception:
            _log.exception("handler failed for %s %s", request.method, request.path)
            if not response.started:
                response.send(500, [("content-type", "text/plain")], b"fake server error")
            else:
                response.abort()
        finally:
            if not response.finished:
                if response.started:
                    response.end()
                else:
                    response.send(500, [("content-type", "text/plain")], b"no response")
            self._task = None
            if self._pending and not self.lost:
                self._start(self._pending.popleft())

    def response_done(self, keep_alive: bool) -> None:
        """Close the connection after the response if HTTP says so."""
        if not keep_alive and self._transport is not None:
            self._transport.close()

    # -- writing --------------------------------------------------------------
    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not self.lost and not transport.is_closing():
            transport.write(data)

    async def drain(self) -> None:
        if not self.paused or self.lost:
            return
        self._drain = asyncio.get_running_loop().create_future()
        await self._drain

    def _wake_drain(self) -> None:
        waiter, self._drain = self._drain, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def abort(self) -> None:
        """Close with a TCP reset: SO_LINGER 0 makes close() send RST instead of FIN."""
        transport = self._transport
        if transport is None or self.lost:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        transport.abort()

    def _reject(self, status_line: bytes) -> None:
        self.write(status_line + b"content-length: 0\r\nconnection: close\r\n\r\n")
        if self._transport is not None:
            self._transport.close()


class HttpServer:
    """Listens on a host/port and runs ``handler(request, response)`` per request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self.host = ""
        self.port = 0

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False
    ) -> tuple[str, int]:
        """Bind and listen; returns the bound (host, port), useful with port 0."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self),
            host,
            port,
            reuse_address=True,
            reuse_port=reuse_port or None,
            backlog=1024,
        )
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = str(sockname[0]), int(sockname[1])
        return self.host, self.port

    async def close(self) -> None:
        """Stop listening and reset every open connection (cancelling handlers)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in list(self.connections):
            conn.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), timeout=2)

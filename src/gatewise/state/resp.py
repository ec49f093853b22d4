"""A minimal asyncio Redis client (RESP2) for the counter store's hot path.

Why not redis-py: per call it checks a connection out of a pool, packs the
command through several layers and parses the reply through more; that was most
of Redis mode's added latency. Here one persistent connection pipelines every
call: a request is written at once and its reply is matched to it in order (Redis
answers a connection's commands in the order it received them).

Failure is fast: connecting (with AUTH and SELECT) and every call time out after
``timeout`` seconds. A timed-out or broken connection is closed, failing every
call waiting on it, and the next call opens a new one. Nothing is retried here.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass
from typing import TypeAlias, cast
from urllib.parse import parse_qs, unquote, urlsplit

Arg = str | int | bytes


class RespError(Exception):
    """An error reply from the server (``-ERR ...``, ``-NOSCRIPT ...``)."""


Reply: TypeAlias = "bytes | int | list[Reply] | RespError | None"


class ProtocolError(ConnectionError):
    """The server sent something that is not RESP2."""


@dataclass(frozen=True)
class Address:
    """Where a Redis server is, from ``redis://``, ``rediss://`` or ``unix://`` URLs."""

    host: str
    port: int
    db: int
    path: str | None = None  # unix socket
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Address:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        if parts.scheme == "unix":
            db = int(query.get("db", ["0"])[0])
            return cls("", 0, db, parts.path, username=username, password=password)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError("a Redis URL must start with redis://, rediss:// or unix://")
        db = int(parts.path.strip("/") or query.get("db", ["0"])[0])
        host, port = parts.hostname or "localhost", parts.port or 6379
        tls = parts.scheme == "rediss"
        return cls(host, port, db, None, tls, username, password)

    @property
    def name(self) -> str:
        """``host:port/db``: names the server in errors, never with the password."""
        if self.path is not None:
            return f"unix:{self.path}"
        return f"{self.host}:{self.port}/{self.db}"


def pack(args: tuple[Arg, ...]) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


class Parser:
    """Incremental RESP2 reply parser: ``feed`` bytes, then ``gets`` until it returns ``MORE``.

    Error replies are returned as ``RespError`` values (also inside arrays), not
    raised: one error answers one command and must not disturb the others.
    """

    MORE: object = object()

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def gets(self) -> Reply | object:
        try:
            reply, end = self._parse(0)
        except _Incomplete:
            return self.MORE
        del self._buffer[:end]
        return reply

    def _line(self, start: int) -> tuple[bytes, int]:
        end = self._buffer.find(b"\r\n", start)
        if end < 0:
            raise _Incomplete
        return bytes(self._buffer[start + 1 : end]), end + 2

    def _parse(self, start: int) -> tuple[Reply, int]:
        if start >= len(self._buffer):
            raise _Incomplete
        kind = self._buffer[start]
        line, pos = self._line(start)
        if kind == 36:  # $ bulk string
            size = int(line)
            if size < 0:
                return None, pos
            if len(self._buffer) < pos + size + 2:
                raise _Incomplete
            return bytes(self._buffer[pos : pos + size]), pos + size + 2
        if kind == 58:  # : integer
            return int(line), pos
        if kind == 43:  # + simple string
            return line, pos
        if kind == 45:  # - error
            return RespError(line.decode(errors="replace")), pos
        if kind == 42:  # * array
            count = int(line)
            if count < 0:
                return None, pos
            items: list[Reply] = []
            for _ in range(count):
                item, pos = self._parse(pos)
                items.append(item)
            return items, pos
        raise ProtocolError(f"unexpected RESP reply type {chr(kind)!r}")


class _Connection(asyncio.Protocol):
    """One connection: writes commands as they come, resolves their futures in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[Reply]] = deque()
        self.parser = Parser()
        self.broken: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        while self.waiting:
            try:
                reply = self.parser.gets()
            except (ProtocolError, ValueError) as exc:
                self.abort(ProtocolError(f"bad reply from Redis: {exc}"))
                return
            if reply is Parser.MORE:
                return
            future = self.waiting.popleft()
            if future.done():  # the caller gave up (cancelled): skip its reply
                continue
            if isinstance(reply, RespError):
                future.set_exception(reply)
            else:
                future.set_result(reply)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.abort(exc or ConnectionError("Redis closed the connection"))

    def abort(self, exc: BaseException) -> None:
        """Fails every waiting call and closes the connection; the client opens a new one."""
        if self.broken is None:
            self.broken = exc
        if self.transport is not None:
            self.transport.abort()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError(str(exc) or type(exc).__name__))

    def send(self, command: bytes) -> asyncio.Future[Reply]:
        assert self.transport is not None
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.transport.write(command)
        return future


class RespClient:
    """Pipelined calls over one persistent connection, opened on first use."""

    def __init__(self, address: Address, *, timeout: float) -> None:
        self.address = address
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None

    async def call(self, *args: Arg) -> Reply:
        """Sends one command and returns its reply; raises ``RespError`` for an error reply,
        ``TimeoutError`` or ``OSError`` when the server is slow or unreachable."""
        connection = self._connection
        if connection is None or connection.broken is not None:
            connection = await self._connect()
        future = connection.send(pack(args))
        timer = asyncio.get_running_loop().call_later(self._timeout, _expire, connection, future)
        try:
            return await future
        finally:
            timer.cancel()

    async def close(self) -> None:
        if self._connecting is not None:  # do not leave a connection opening behind
            self._connecting.cancel()
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.abort(ConnectionError("client closed"))

    async def _connect(self) -> _Connection:
        # Concurrent callers share one connection attempt.
        if self._connecting is None:
            task = asyncio.ensure_future(self._open())
            self._connecting = task
            task.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, task: asyncio.Future[_Connection]) -> None:
        self._connecting = None
        if not task.cancelled() and task.exception() is None:
            self._connection = task.result()

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        address = self.address
        connection = _Connection()
        async with asyncio.timeout(self._timeout):
            if address.path is not None:
                await loop.create_unix_connection(lambda: connection, address.path)
            else:
                context = ssl.create_default_context() if address.tls else None
                await loop.create_connection(
                    lambda: connection, address.host, address.port, ssl=context
                )
            try:
                hello: list[asyncio.Future[Reply]] = []
                if address.password is not None:
                    user = (address.username,) if address.username else ()
                    hello.append(connection.send(pack(("AUTH", *user, address.password))))
                if address.db:
                    hello.append(connection.send(pack(("SELECT", address.db))))
                for future in hello:
                    await future
            except BaseException:
                connection.abort(ConnectionError("handshake failed"))
                for future in hello:  # failed by abort; only the first error is reported
                    if not future.cancelled():
                        future.exception()
                raise
        return connection


def _expire(connection: _Connection, future: asyncio.Future[Reply]) -> None:
    """A call timed out: the connection may be stuck, so drop it (and fail its other calls)."""
    if not future.done():
        future.set_exception(TimeoutError("Redis did not answer in time"))
        connection.abort(TimeoutError("a call timed out"))

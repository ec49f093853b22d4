"""uvicorn's httptools protocol with coalesced socket writes.

uvicorn writes a response's head and its body with two ``transport.write``
calls; on a loopback or LAN socket each call is a ``send`` system call that
also runs the receiver's TCP path, and the benchmark showed these writes as
the largest single cost per request. Here the transport is wrapped so that
the writes made during one event-loop iteration leave in one system call: a
JSON response (head + body) becomes one write, and stream chunks that are
ready together go out together. Nothing is delayed beyond the end of the
current loop iteration.

Only ``connection_made`` is overridden; everything else is uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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

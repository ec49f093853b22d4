"""The lean upstream HTTP client against raw loopback servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gatewise.net.http1 import (
    ConnectError,
    ConnectionLost,
    HTTPClient,
    Origin,
    ProtocolError,
    ReadTimeout,
    _Connection,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1/x"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def head_for(url: str, body: bytes) -> bytes:
    origin = Origin(url)
    return (
        f"POST /v1/x HTTP/1.1\r\nhost: {origin.host_header}\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()


async def call(
    client: HTTPClient, url: str, body: bytes = b"{}", timeout: float = 2.0
) -> tuple[int, bytes]:
    response = await client.request(
        Origin(url),
        head_for(url, body),
        body,
        first_byte_timeout=timeout,
        idle_timeout=timeout,
        total_timeout=timeout * 2,
    )
    return response.status, await response.read()


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


@pytest.fixture
async def client() -> AsyncIterator[HTTPClient]:
    client = HTTPClient(limit=4, connect_timeout=1.0)
    yield client
    await client.close()


async def test_keep_alive_reuses_one_connection(client: HTTPClient) -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while not reader.at_eof():
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(OK)

    server, url = await serve(handler)
    async with server:
        for _ in range(5):
            assert await call(client, url) == (200, b"ok")
    assert connections == 1


async def test_connection_close_is_honoured(client: HTTPClient) -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
        writer.close()

    server, url = await serve(handler)
    async with server:
        for _ in range(3):
            assert await call(client, url) == (200, b"ok")
    assert connections == 3


async def test_a_stale_pooled_connection_is_retried_on_a_fresh_one(client: HTTPClient) -> None:
    """The server drops an idle keep-alive connection without saying so."""
    served = 0
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(OK)  # keep-alive promised ...
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()  # ... then closed while idle
        await writer.wait_closed()
        closed.set()

    server, url = await serve(handler)
    async with server:
        assert await call(client, url) == (200, b"ok")
        await asyncio.wait_for(closed.wait(), 5)  # the pooled connection is now stale
        assert await call(client, url) == (200, b"ok")
    assert served == 2


async def test_chunked_body_streams_as_it_arrives(client: HTTPClient) -> None:
    first_seen = asyncio.Event()  # the second piece is only sent once the first was read

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n"
        )
        for piece in (b"data: 1\n\n", b"data: 2\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.wait_for(first_seen.wait(), 5)
        writer.write(b"0\r\n\r\n")

    server, url = await serve(handler)
    async with server:
        response = await client.request(
            Origin(url),
            head_for(url, b"{}"),
            b"{}",
            first_byte_timeout=2,
            idle_timeout=2,
            total_timeout=5,
        )
        assert response.headers["content-type"] == "text/event-stream"
        pieces = []
        async for piece in response.iter_chunks():
            pieces.append(piece)
            first_seen.set()
    assert pieces == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_large_body_with_back_pressure(client: HTTPClient) -> None:
    size = 5 * (1 << 20)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        writer.write(b"x" * size)
        await writer.drain()

    server, url = await serve(handler)
    async with server:
        response = await client.request(
            Origin(url),
            head_for(url, b"{}"),
            b"{}",
            first_byte_timeout=2,
            idle_timeout=2,
            total_timeout=10,
        )
        received = 0
        async for piece in response.iter_chunks():
            received += len(piece)
            await asyncio.sleep(0)  # a slow consumer
    assert received == size


async def test_read_takes_a_body_larger_than_the_high_water_mark(client: HTTPClient) -> None:
    """Reading pauses at the high-water mark; ``read`` must take what is buffered (which
    resumes it) rather than wait for the end of a body it no longer reads."""
    body = bytes(range(256)) * (3 * (1 << 20) // 256)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body))
            writer.write(body)
            await writer.drain()

    server, url = await serve(handler)
    async with server:
        for _ in range(2):  # and the connection is pooled after it
            assert await call(client, url, timeout=1.0) == (200, body)


async def test_a_failed_read_drops_the_bytes_it_buffered(client: HTTPClient) -> None:
    """A connection is a reference cycle (its parser holds its callbacks): aborting it must
    drop its buffered body rather than leave it for a rare full garbage collection."""
    connections: list[_Connection] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (4 << 20))
        writer.write(b"x" * (2 << 20))  # half, then silence
        await writer.drain()
        await asyncio.sleep(5)

    server, url = await serve(handler)
    async with server:
        response = await client.request(
            Origin(url),
            head_for(url, b"{}"),
            b"{}",
            first_byte_timeout=1,
            idle_timeout=0.2,
            total_timeout=5,
        )
        assert response._conn is not None
        connections.append(response._conn)
        with pytest.raises(ReadTimeout):
            await response.read()
    assert connections[0]._buffered == 0 and not connections[0]._body


async def test_large_request_body_is_sent_whole(client: HTTPClient) -> None:
    seen = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        seen = len(await read_request(reader))
        writer.write(OK)

    body = b"y" * 300_000
    server, url = await serve(handler)
    async with server:
        assert await call(client, url, body) == (200, b"ok")
    assert seen == len(head_for(url, body)) + len(body)


async def test_failures_are_typed(client: HTTPClient) -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()
        writer.transport.abort()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")

    server, url = await serve(slow)
    async with server:
        with pytest.raises(ReadTimeout):
            await call(client, url, timeout=0.2)
    server, url = await serve(reset)
    async with server:
        with pytest.raises(ConnectionLost):
            await call(client, url)
    server, url = await serve(garbage)
    async with server:
        with pytest.raises(ProtocolError):
            await call(client, url)
    server, url = await serve(slow)
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectError):
        await call(client, url)


async def test_the_connection_limit_queues_requests(client: HTTPClient) -> None:
    active = peak = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active, peak
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.02)
            active -= 1
            writer.write(OK)

    server, url = await serve(handler)
    async with server:
        results = await asyncio.gather(*(call(client, url) for _ in range(12)))
    assert results == [(200, b"ok")] * 12
    assert peak <= 4  # the client's limit

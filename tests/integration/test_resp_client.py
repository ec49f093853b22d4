"""The counter store's Redis client over real sockets: a real Redis, and tiny fake servers
that misbehave on purpose (close the connection, never answer)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gatewise.state.base import Rate
from gatewise.state.redis import _ADMIT, RedisCounterStore
from gatewise.state.resp import Address, RespClient, RespError
from tests.redis_support import require_redis

REDIS = "redis://127.0.0.1:6379"


@pytest.fixture
async def redis() -> AsyncIterator[RespClient]:
    require_redis()
    client = RespClient(Address.from_url(REDIS + "/0"), timeout=2.0)
    yield client
    await client.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class FakeServer:
    """A local TCP server running ``handler`` per connection; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()

    async def __aenter__(self) -> Address:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return Address.from_url(f"redis://127.0.0.1:{port}/0")

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def read_command(reader: asyncio.StreamReader) -> list[bytes]:
    count = int((await reader.readline())[1:])
    parts = []
    for _ in range(count):
        size = int((await reader.readline())[1:])
        parts.append((await reader.readexactly(size + 2))[:-2])
    return parts


async def test_concurrent_calls_get_their_own_replies(redis: RespClient) -> None:
    big = b"x" * 200_000  # spans many reads
    payloads = [f"echo-{i}".encode() * (i % 7) for i in range(500)] + [big]
    replies = await asyncio.gather(*(redis.call("ECHO", p) for p in payloads))
    assert replies == payloads


async def test_error_replies_fail_only_their_own_call(redis: RespClient) -> None:
    key = f"gwtest:{uuid.uuid4().hex}"
    calls = [
        redis.call("SET", key, "1", "NX", "PX", 10_000),
        redis.call("EVALSHA", "0" * 40, 0),
        redis.call("SET", key, "1", "NX", "PX", 10_000),
        redis.call("EVAL", "return {1, {'a', redis.error_reply('inner')}}", 0),
        redis.call("INCRBY", key, 41),
    ]
    first, missing, second, nested, number = await asyncio.gather(*calls, return_exceptions=True)
    assert (first, second, number) == (b"OK", None, 42)
    assert isinstance(missing, RespError) and str(missing).startswith("NOSCRIPT")
    assert isinstance(nested, list) and nested[0] == 1
    inner = nested[1]
    assert isinstance(inner, list) and inner[0] == b"a" and isinstance(inner[1], RespError)
    await redis.call("DEL", key)


async def test_the_url_selects_the_database() -> None:
    require_redis()
    key = f"gwtest:{uuid.uuid4().hex}"
    db3 = RespClient(Address.from_url(REDIS + "/3"), timeout=2.0)
    db0 = RespClient(Address.from_url(REDIS + "/0"), timeout=2.0)
    try:
        await db3.call("SET", key, "three", "PX", 10_000)
        assert await db3.call("GET", key) == b"three"
        assert await db0.call("GET", key) is None
        await db3.call("DEL", key)
    finally:
        await db3.close()
        await db0.close()


async def test_auth_is_sent_first_and_its_error_is_reported() -> None:
    seen: list[list[bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_command(reader))
        writer.write(b"-WRONGPASS invalid username-password pair\r\n")
        await writer.drain()
        await reader.read()

    async with FakeServer(handler) as address:
        secret = Address.from_url(f"redis://bob:s3cret@127.0.0.1:{address.port}/2")
        client = RespClient(secret, timeout=1.0)
        with pytest.raises(RespError, match="WRONGPASS") as error:
            await client.call("PING")
        assert "s3cret" not in str(error.value)
        assert seen == [[b"AUTH", b"bob", b"s3cret"]]
        await client.close()


async def test_a_closed_connection_is_reopened_on_the_next_call() -> None:
    async def answer_once_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_command(reader)
        writer.write(b"+PONG\r\n")
        await writer.drain()

    server = FakeServer(answer_once_then_close)
    async with server as address:
        client = RespClient(address, timeout=1.0)
        assert await client.call("PING") == b"PONG"
        deadline = time.monotonic() + 5
        while client._connection is not None and client._connection.broken is None:
            assert time.monotonic() < deadline, "the client never saw the server close"
            await asyncio.sleep(0.001)  # a few loop turns, usually
        assert await client.call("PING") == b"PONG"
        assert server.connections == 2
        await client.close()


async def test_calls_in_flight_when_the_server_closes_fail_fast() -> None:
    async def close_without_answering(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_command(reader)

    server = FakeServer(close_without_answering)
    async with server as address:
        client = RespClient(address, timeout=30.0)
        start = time.perf_counter()
        results = await asyncio.gather(
            *(client.call("PING") for _ in range(3)), return_exceptions=True
        )
        assert time.perf_counter() - start < 5.0  # the close, not the 30 s timeout
        assert all(isinstance(r, ConnectionError) for r in results)
        await client.close()


async def test_a_call_without_an_answer_times_out_and_the_connection_is_replaced() -> None:
    closed = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_command(reader)
        await reader.read()  # until the client gives up and closes
        closed.set()

    server = FakeServer(never_answer)
    async with server as address:
        client = RespClient(address, timeout=0.1)
        start = time.perf_counter()
        with pytest.raises(TimeoutError):
            await client.call("PING")
        assert 0.09 < time.perf_counter() - start < 2.0
        await asyncio.wait_for(closed.wait(), 5.0)  # the stuck connection was closed
        with pytest.raises(TimeoutError):
            await client.call("PING")
        assert server.connections == 2
        await client.close()


async def test_a_closed_port_fails_fast_with_an_os_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = RespClient(Address.from_url(f"redis://127.0.0.1:{port}/0"), timeout=30.0)
    start = time.perf_counter()
    with pytest.raises(ConnectionRefusedError):  # at once, not a TimeoutError after 30 s
        await client.call("PING")
    assert time.perf_counter() - start < 5.0
    await client.close()


def test_it_runs_on_uvloop_as_the_gateway_does() -> None:
    uvloop = pytest.importorskip("uvloop")
    require_redis()

    async def calls() -> list[object]:
        client = RespClient(Address.from_url(REDIS + "/0"), timeout=2.0)
        try:
            return list(await asyncio.gather(*(client.call("ECHO", str(i)) for i in range(50))))
        finally:
            await client.close()

    assert uvloop.run(calls()) == [str(i).encode() for i in range(50)]


async def test_the_store_falls_back_to_eval_when_the_server_lacks_the_script() -> None:
    commands: list[list[bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        commands.append(await read_command(reader))
        writer.write(b"-NOSCRIPT No matching script. Please use EVAL.\r\n")
        commands.append(await read_command(reader))
        writer.write(b"$12\r\n0 0 2 5000 1\r\n")  # allowed; remaining 2, reset 5 ms, used 1
        await writer.drain()
        await reader.read()

    async with FakeServer(handler) as address:
        store = RedisCounterStore(f"redis://127.0.0.1:{address.port}/0", timeout=1.0)
        outcome = await store.admit([Rate("r", limit=3, period=60.0, cost=1)])
        await store.close()
    assert outcome.allowed and outcome.states[0].remaining == 2
    assert outcome.states[0].reset_after == 0.005
    (evalsha, sha, *_), (eval_, source, count, key, *_) = commands
    assert (evalsha, sha) == (b"EVALSHA", _ADMIT.sha.encode())
    assert (eval_, source, count, key) == (b"EVAL", _ADMIT.source.encode(), b"1", b"gw:r")

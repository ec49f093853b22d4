"""Upstream calls through an HTTP proxy's CONNECT tunnel (plain and TLS), on loopback."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gatewise.net.http1 import ConnectError, HTTPClient, Origin
from gatewise.net.proxy import Proxy, resolver

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


class ConnectProxy:
    """A minimal CONNECT proxy: records each tunnel's head, then pipes bytes both ways."""

    def __init__(self, refuse: bool = False) -> None:
        self.heads: list[bytes] = []
        self.refuse = refuse

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        if self.refuse:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
            writer.close()
            return
        host, _, port = head.split(b" ")[1].decode().rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def upstream_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        await reader.readexactly(2)  # the test's body is "{}"
        writer.write(OK)


async def serve(handler, ssl_context: ssl.SSLContext | None = None) -> tuple[asyncio.Server, int]:  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
    return server, server.sockets[0].getsockname()[1]


async def call(client: HTTPClient, url: str) -> tuple[int, bytes]:
    origin = Origin(url)
    head = (
        f"POST /v1/x HTTP/1.1\r\nhost: {origin.host_header}\r\ncontent-length: 2\r\n\r\n".encode()
    )
    response = await client.request(
        origin, head, b"{}", first_byte_timeout=2, idle_timeout=2, total_timeout=5
    )
    return response.status, await response.read()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[ConnectProxy, int]]:
    state = ConnectProxy()
    server, port = await serve(state.handle)
    async with server:
        yield state, port


async def test_plain_upstream_through_the_tunnel(proxy: tuple[ConnectProxy, int]) -> None:
    state, proxy_port = proxy
    server, port = await serve(upstream_handler)
    client = HTTPClient(proxy=resolver(f"http://user:s3cret@127.0.0.1:{proxy_port}", False))
    async with server:
        for _ in range(3):  # keep-alive: one tunnel serves every request
            assert await call(client, f"http://127.0.0.1:{port}/v1/x") == (200, b"ok")
    await client.close()
    assert len(state.heads) == 1
    assert state.heads[0].startswith(f"CONNECT 127.0.0.1:{port} HTTP/1.1".encode())
    assert b"proxy-authorization: Basic dXNlcjpzM2NyZXQ=" in state.heads[0]


async def test_tls_runs_end_to_end_inside_the_tunnel(
    proxy: tuple[ConnectProxy, int], certificate: tuple[Path, Path]
) -> None:
    state, proxy_port = proxy
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server, port = await serve(upstream_handler, server_context)
    client = HTTPClient(
        proxy=resolver(f"http://127.0.0.1:{proxy_port}", False),
        ssl_context=ssl.create_default_context(cafile=str(cert)),
    )
    async with server:
        assert await call(client, f"https://localhost:{port}/v1/x") == (200, b"ok")
    await client.close()
    assert state.heads[0].startswith(f"CONNECT localhost:{port} ".encode())


async def test_a_refusing_proxy_is_a_connect_error() -> None:
    state = ConnectProxy(refuse=True)
    server, proxy_port = await serve(state.handle)
    client = HTTPClient(proxy=resolver(f"http://127.0.0.1:{proxy_port}", False))
    async with server:
        with pytest.raises(ConnectError, match="407"):
            await call(client, "http://127.0.0.1:9/v1/x")
    await client.close()


def test_environment_proxies_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://egress:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example,localhost")
    find = resolver(None, trust_env=True)
    assert find is not None
    assert find("https", "api.openai.com") == Proxy("egress", 3128)
    assert find("https", "internal.example") is None
    assert resolver(None, trust_env=False) is None
    with pytest.raises(ValueError):
        Proxy.from_url("https://proxy:443")

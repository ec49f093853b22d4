"""GatewayCycle: the response head it writes is uvicorn's, byte for byte, and anything
unusual still goes through uvicorn's own checks.

Two real uvicorn servers run the same tiny ASGI app, one with uvicorn's protocol and
one with the gateway's; raw sockets compare what each writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gatewise.http.asgi import FRAMED_HEADERS, header_pairs
from gatewise.http.protocol import CoalescingHttpToolsProtocol, GatewayCycle

HEADERS = [(b"x-request-id", b"req_1"), (b"content-type", b"application/json")]
RATE_LINES = (
    b"x-ratelimit-limit-requests: 100\r\n"
    b"x-ratelimit-remaining-requests: 99\r\n"
    b"x-ratelimit-reset-requests: 600ms\r\n"
)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the headers the path asks for (and a body of 2 bytes); the rate
    headers go framed where the server offers it, as pairs elsewhere (as the gateway's)."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    headers = list(HEADERS)
    if path == "/length":
        headers.append((b"content-length", b"2"))
    elif path == "/upper":
        headers += [(b"X-Custom", b"yes"), (b"content-length", b"2")]
    elif path == "/newline":
        headers.append((b"x-bad", b"a\nb"))
    elif path == "/close":
        headers += [(b"connection", b"close"), (b"content-length", b"2")]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    if FRAMED_HEADERS in (scope.get("extensions") or {}):
        start[FRAMED_HEADERS] = RATE_LINES
    else:
        headers += header_pairs(RATE_LINES)
    await send(start)
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.contextmanager
def serving(protocol: type[HttpToolsProtocol]) -> Iterator[int]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=protocol, lifespan="off", log_config=None,
        access_log=False, server_header=False, date_header=False, loop="asyncio",
    )  # fmt: skip
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(server.serve()))
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive()
            threading.Event().wait(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def whole_responses(data: bytes, count: int) -> bool:
    """Whether ``data`` holds ``count`` whole responses (bodies framed by length or chunks)."""
    position = 0
    for _ in range(count):
        end = data.find(b"\r\n\r\n", position)
        if end < 0:
            return False
        head, body = data[position:end].lower(), end + 4
        length = re.search(rb"\r\ncontent-length: *(\d+)", head)
        if length is not None:
            position = body + int(length.group(1))
        elif b"\r\ntransfer-encoding: chunked" in head:
            last = data.find(b"\r\n0\r\n\r\n", body - 2)  # from the head's end: empty bodies too
            if last < 0:
                return False
            position = last + 7
        else:
            return False  # unframed: the server closes when it is done
    return len(data) >= position


def exchange(port: int, request: bytes, responses: int = 1) -> bytes:
    """What the server writes until ``responses`` whole responses came or it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while not whole_responses(received, responses):
            chunk = sock.recv(65536)  # a stuck server fails the test after 5 s
            if not chunk:
                break
            received += chunk
        return received


@pytest.fixture(scope="module")
def ports() -> Iterator[tuple[int, int]]:
    with serving(HttpToolsProtocol) as plain, serving(CoalescingHttpToolsProtocol) as ours:
        yield plain, ours


@pytest.mark.parametrize(
    ("path", "connection"),
    [
        ("/length", "keep-alive"),
        ("/chunked", "keep-alive"),  # no content-length: uvicorn chunks the body
        ("/upper", "keep-alive"),  # a header name in capitals: uvicorn's own path
        ("/close", "keep-alive"),  # the app closes the connection
        ("/length", "close"),  # the client asks to close
    ],
)
def test_the_head_is_uvicorns_byte_for_byte(
    ports: tuple[int, int], path: str, connection: str
) -> None:
    request = f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: {connection}\r\n\r\n".encode()
    plain, ours = (exchange(port, request) for port in ports)
    assert plain == ours
    assert ours.startswith(b"HTTP/1.1 200 OK\r\n")
    assert (
        b"\r\nx-ratelimit-remaining-requests: 99\r\n" in ours
    )  # framed, or pairs on uvicorn's path


def test_a_keep_alive_connection_serves_the_next_request(ports: tuple[int, int]) -> None:
    one = b"GET /length HTTP/1.1\r\nhost: x\r\n\r\n"
    received = exchange(ports[1], one + one, responses=2)
    assert received.count(b"HTTP/1.1 200 OK") == 2 and received.endswith(b"\r\n\r\nok")


def test_a_header_value_with_a_newline_is_refused_as_uvicorn_refuses_it(
    ports: tuple[int, int],
) -> None:
    # uvicorn raises in the app's send and closes the connection without writing a head.
    request = b"GET /newline HTTP/1.1\r\nhost: x\r\n\r\n"
    plain, ours = (exchange(port, request) for port in ports)
    assert plain == ours == b""


def test_the_gateway_path_is_taken_unless_a_header_is_unusual(
    ports: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    heads: list[bytes | None] = []
    original = GatewayCycle._head

    def spy(self: GatewayCycle, message: Any) -> bytes | None:
        heads.append(original(self, message))
        return heads[-1]

    monkeypatch.setattr(GatewayCycle, "_head", spy)
    for path in ("/length", "/upper"):
        exchange(ports[1], f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    assert heads[0] is not None and heads[0].endswith(
        b"content-length: 2\r\n" + RATE_LINES + b"\r\n"
    )
    assert heads[1] is None  # "X-Custom": uvicorn's path

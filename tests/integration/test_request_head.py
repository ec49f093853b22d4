"""The request head over raw sockets: size and count limits (431), malformed HTTP (400),
both in OpenAI's JSON envelope on a connection the gateway then closes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from gatewise.testing.gateway import RunningGateway
from tests.rawhttp import request

CHAT = b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}'


def connect(gateway: RunningGateway) -> socket.socket:
    parts = urlsplit(gateway.url)
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10)
    _LEFT.pop(sock.fileno(), None)
    return sock


def post_head(extra: bytes, body: bytes = CHAT) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
        + extra
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )


_LEFT: dict[int, bytes] = {}  # bytes read past a response, per socket (pipelined replies)


def read_reply(sock: socket.socket) -> tuple[int, dict[str, str], bytes, bool]:
    """(status, headers, body, closed): one response; for an error, whether the server
    then closed the connection."""
    data = _LEFT.pop(sock.fileno(), b"")
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"connection closed before a response: {data!r}"
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        piece = sock.recv(65536)
        assert piece
        rest += piece
    if rest[length:]:
        _LEFT[sock.fileno()] = rest[length:]
    closed = False
    if status >= 400:
        sock.settimeout(3)
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
    return status, headers, rest[:length], closed


def assert_json_error(
    reply: tuple[int, dict[str, str], bytes, bool], status: int, code: str
) -> dict[str, object]:
    got, headers, body, closed = reply
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert headers["x-request-id"]
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == code
    assert closed
    return error  # type: ignore[no-any-return]


def exchange(gateway: RunningGateway, data: bytes) -> tuple[int, dict[str, str], bytes, bool]:
    with connect(gateway) as sock:
        sock.sendall(data)
        return read_reply(sock)


# --- 431: limits on the request head ---------------------------------------------


def test_headers_within_the_limits_are_served(gateway: RunningGateway) -> None:
    headers = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 500) for i in range(95))  # ~50 KB
    status, _, body, _ = exchange(gateway, post_head(headers))
    assert status == 200, body


def test_an_oversized_header_is_431(gateway: RunningGateway) -> None:
    reply = exchange(gateway, post_head(b"x-big: " + b"v" * 70_000 + b"\r\n"))
    error = assert_json_error(reply, 431, "request_headers_too_large")
    assert "65536" in str(error["message"])


def test_too_many_headers_is_431(gateway: RunningGateway) -> None:
    headers = b"".join(b"x-h%d: v\r\n" % i for i in range(120))
    reply = exchange(gateway, post_head(headers))
    error = assert_json_error(reply, 431, "request_headers_too_large")
    assert "100" in str(error["message"])


def test_a_huge_header_is_refused_before_it_is_read(gateway: RunningGateway) -> None:
    """64 MB of header: refused once the limit is passed, not read whole (it was: 4 s of a
    stalled worker, then 200) while the worker keeps serving others."""
    sent = 0
    done = threading.Event()

    def send_forever(sock: socket.socket) -> None:
        nonlocal sent
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nx-big: ")
        piece = b"v" * 65536
        try:
            while sent < 64 << 20 and not done.is_set():
                sock.sendall(piece)
                sent += len(piece)
        except OSError:
            pass  # the gateway closed the connection

    with connect(gateway) as sock:
        started = time.monotonic()
        sender = threading.Thread(target=send_forever, args=(sock,), daemon=True)
        sender.start()
        reply = read_reply(sock)
        elapsed = time.monotonic() - started
        done.set()
        sender.join(timeout=10)
    assert_json_error(reply, 431, "request_headers_too_large")
    assert elapsed < 2.0
    assert sent < 32 << 20  # the gateway stopped reading long before the end
    healthy = request("GET", gateway.url + "/healthz", timeout=5)
    assert healthy.status == 200


def test_the_limits_are_configurable(start_gateway) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(
        {
            "server": {"max_header_bytes": 4096, "max_headers": 10},
            "auth": {"mode": "open"},
            "providers": {"mock": {"type": "mock"}},
            "models": [
                {"name": "mock-gpt", "deployments": [{"provider": "mock", "model": "mock-gpt"}]}
            ],
        }
    )
    ok = exchange(gateway, post_head(b"x-a: " + b"v" * 3000 + b"\r\n"))
    assert ok[0] == 200, ok[2]
    error = assert_json_error(
        exchange(gateway, post_head(b"x-a: " + b"v" * 5000 + b"\r\n")),
        431,
        "request_headers_too_large",
    )
    assert "4096" in str(error["message"])
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(8))  # + host, content-type, length
    assert_json_error(exchange(gateway, post_head(many)), 431, "request_headers_too_large")


def test_keep_alive_requests_each_get_the_full_allowance(gateway: RunningGateway) -> None:
    """The count restarts with every request on a connection."""
    headers = b"x-h: " + b"v" * 40_000 + b"\r\n"
    with connect(gateway) as sock:
        for _ in range(3):
            sock.sendall(post_head(headers))
            status, _, body, _ = read_reply(sock)
            assert status == 200, body


def big_chat(size: int) -> bytes:
    return b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "%s"}]}' % (b"w" * size)


def test_body_bytes_read_with_the_head_do_not_count_against_it(gateway: RunningGateway) -> None:
    """One read holds a 20 KB head and a 60 KB body: 80 KB, but the head is within."""
    headers = b"x-h: " + b"v" * 20_000 + b"\r\n"
    status, _, body, _ = exchange(gateway, post_head(headers, big_chat(60_000)))
    assert status == 200, body


def test_a_head_ending_across_two_reads_is_not_mistaken_for_a_long_one(
    gateway: RunningGateway,
) -> None:
    """The blank line straddles two reads; the second also holds a body that takes the
    total past the limit."""
    data = post_head(b"x-h: " + b"v" * 50_000 + b"\r\n", big_chat(30_000))
    cut = data.index(b"\r\n\r\n") + 3  # ... "\r\n\r" | "\n{body}"
    with connect(gateway) as sock:
        sock.sendall(data[:cut])
        time.sleep(0.2)
        sock.sendall(data[cut:])
        status, _, body, _ = read_reply(sock)
    assert status == 200, body


def test_pipelined_requests_are_each_served(gateway: RunningGateway) -> None:
    one = post_head(b"x-h: " + b"v" * 30_000 + b"\r\n")
    with connect(gateway) as sock:
        sock.sendall(one * 3)
        for _ in range(3):
            status, _, body, _ = read_reply(sock)
            assert status == 200, body


# --- 400: malformed HTTP ---------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nbad header line\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\ncontent-length: x\r\n\r\n",
        # a bad chunk while the request is being served: the handler sees a disconnect
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\n"
        b'\r\n5\r\n{"a":\r\nzz\r\n',
    ],
)
def test_malformed_http_is_a_json_400(gateway: RunningGateway, data: bytes) -> None:
    error = assert_json_error(exchange(gateway, data), 400, "invalid_http_request")
    assert "Invalid HTTP request" in str(error["message"])

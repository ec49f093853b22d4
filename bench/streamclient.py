"""A tiny sequential HTTP/1.1 client over a raw keep-alive socket that times SSE streams.

For each request it records, in microseconds from the moment the request was sent:
the response headers, the first SSE event (``data:`` line), and the end of the stream.
A raw socket keeps the client's own overhead to a few microseconds, so differences
between the direct and gateway runs belong to the servers.
"""

from __future__ import annotations

import socket
import statistics
import time
from dataclasses import dataclass

from auth import auth_header_lines
from procs import BenchError


@dataclass(frozen=True)
class StreamSample:
    headers_us: float
    first_event_us: float
    total_us: float
    events: int


@dataclass(frozen=True)
class StreamSummary:
    samples: int
    headers_p50_us: float
    ttfb_p50_us: float
    ttfb_p99_us: float
    total_p50_us: float
    events: int  # SSE events in one response (including the final [DONE])


class _Reader:
    """Buffered reads that remember when the newest bytes arrived."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.arrived_ns = 0

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        self.arrived_ns = time.perf_counter_ns()
        if not data:
            raise ConnectionError("server closed the connection mid-response")
        self.buf += data

    def until(self, separator: bytes) -> bytes:
        while (index := self.buf.find(separator)) < 0:
            self._fill()
        data = bytes(self.buf[:index])
        del self.buf[: index + len(separator)]
        return data

    def exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._fill()
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def rest(self) -> bytes:
        """Read until the server closes the connection."""
        try:
            while True:
                self._fill()
        except ConnectionError:
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data


class StreamClient:
    def __init__(self, port: int, path: str, body: bytes, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            f"{auth_header_lines()}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.sock: socket.socket | None = None
        self.reader: _Reader | None = None

    def _connect(self) -> _Reader:
        self.close()
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.reader = sock, _Reader(sock)
        return self.reader

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = self.reader = None

    def one(self) -> StreamSample:
        reader = self.reader or self._connect()
        assert self.sock is not None
        start = time.perf_counter_ns()
        self.sock.sendall(self.request)
        head = reader.until(b"\r\n\r\n")
        headers_ns = reader.arrived_ns
        status, headers = _parse_head(head)
        if status != 200:
            raise BenchError(f"streaming request got HTTP {status}: {head[:300]!r}")
        first_event_ns, body = _read_body(reader, headers)
        if headers.get("connection", "").lower() == "close":
            self.close()
        if first_event_ns is None:
            raise BenchError(f"stream had no SSE event: {body[:300]!r}")
        return StreamSample(
            headers_us=(headers_ns - start) / 1000,
            first_event_us=(first_event_ns - start) / 1000,
            total_us=(reader.arrived_ns - start) / 1000,
            events=body.count(b"data:"),
        )

    def run(self, count: int, warmup: int = 20) -> StreamSummary:
        try:
            for _ in range(warmup):
                self.one()
            samples = [self.one() for _ in range(count)]
        except (OSError, ValueError, IndexError) as error:
            raise BenchError(f"streaming client on port {self.port} failed: {error!r}") from error
        finally:
            self.close()
        return summarize(samples)


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def _read_body(reader: _Reader, headers: dict[str, str]) -> tuple[int | None, bytes]:
    """Read the whole body; return (arrival time of the first ``data:`` bytes, body)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        first: int | None = None
        while size := int(reader.until(b"\r\n").split(b";")[0], 16):
            body += reader.exact(size)
            reader.until(b"\r\n")
            if first is None and b"data:" in body:
                first = reader.arrived_ns
        reader.until(b"\r\n")  # the empty trailer
        return first, bytes(body)
    if "content-length" in headers:
        data = reader.exact(int(headers["content-length"]))
    else:
        data = reader.rest()
    return (reader.arrived_ns if b"data:" in data else None), data


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def summarize(samples: list[StreamSample]) -> StreamSummary:
    ttfb = [sample.first_event_us for sample in samples]
    return StreamSummary(
        samples=len(samples),
        headers_p50_us=statistics.median(sample.headers_us for sample in samples),
        ttfb_p50_us=statistics.median(ttfb),
        ttfb_p99_us=_percentile(ttfb, 0.99),
        total_p50_us=statistics.median(sample.total_us for sample in samples),
        events=samples[-1].events,
    )

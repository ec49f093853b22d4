"""Export of audit entries to a SIEM: syslog (RFC 5424) and HTTP, never on the request path.

Whoever appends entries (the identity store, the admin trail, ``AuditWriter``) tells the
chain once they are committed; ``AuditExporter.submit`` then only appends them to each
sink's bounded queue. One background task per sink sends them in batches; a failed send is
retried with backoff (``max_retries`` times) and counted, then its batch is dropped and
counted: a sink that is down or slow never holds up a request or the database. Each entry
goes out whole, with its ``seq``, ``prev_hash`` and ``hash``, so the receiver can check the
chain on its own copy. Entries hold no secrets (the store keeps none in the trail).

Each worker exports the entries it wrote. A worker killed between the commit and the send
loses those sends (the database keeps the entries; the receiver sees a gap in ``seq``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

import orjson

from gatewise.config.audit import FACILITIES, AuditConfig, HttpSink, SyslogSink
from gatewise.net.http1 import ClientError, HTTPClient, Origin
from gatewise.store.audit_chain import Entry

log = logging.getLogger("gatewise.audit")

#: RFC 5424 severity of every entry: notice (normal but significant).
SEVERITY_NOTICE = 5
#: The structured-data id of the chain's fields (32473: the enterprise number for examples).
SD_ID = "gatewise@32473"
_BOM = b"\xef\xbb\xbf"
_UDP_LIMIT = 65_000


class Sink(Protocol):
    """Where entries go: ``send`` raises when they did not get there."""

    name: str
    batch_size: int

    async def send(self, entries: Sequence[Entry]) -> None: ...

    async def close(self) -> None: ...


def exported(entry: Entry) -> dict[str, object]:
    """An entry as sinks send it: the stored fields, the chain's, and an RFC 3339 time."""
    return {"time": rfc3339(float(entry["at"])), **entry}


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- syslog -----------------------------------------------------------------------------------


def _printable(text: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, or the nil value ``-``."""
    kept = "".join(ch for ch in text if "!" <= ch <= "~")[:limit]
    return kept or "-"


def _sd_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(
    entry: Entry, *, facility: int, app_name: str, hostname: str, procid: int
) -> bytes:
    """One RFC 5424 message: header, the chain's fields as structured data, the entry as
    UTF-8 JSON (with the BOM the RFC asks for)."""
    pri = facility * 8 + SEVERITY_NOTICE
    header = (
        f"<{pri}>1 {rfc3339(float(entry['at']))} {_printable(hostname, 255)} "
        f"{_printable(app_name, 48)} {procid} {_printable(str(entry['action']), 32)} "
        f'[{SD_ID} seq="{entry["seq"]}" hash="{_sd_value(str(entry["hash"]))}" '
        f'prev_hash="{_sd_value(str(entry["prev_hash"]))}"] '
    )
    return header.encode() + _BOM + orjson.dumps(exported(entry))


class SyslogExport:
    """Sends to a syslog server: UDP, one datagram per message, or TCP with octet counting
    (RFC 6587), over one connection made again after a failure."""

    def __init__(self, config: SyslogSink, *, timeout: float = 5.0) -> None:
        self.config = config
        self.name = f"syslog {config.protocol}://{config.host}:{config.port}"
        self.batch_size = 100
        self._timeout = timeout
        self._facility = FACILITIES[config.facility]
        self._hostname = socket.gethostname()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.StreamWriter | None = None

    def _message(self, entry: Entry) -> bytes:
        return syslog_message(
            entry,
            facility=self._facility,
            app_name=self.config.app_name,
            hostname=self._hostname,
            procid=os.getpid(),
        )

    async def send(self, entries: Sequence[Entry]) -> None:
        messages = [self._message(entry) for entry in entries]
        async with asyncio.timeout(self._timeout):
            if self.config.protocol == "udp":
                await self._send_udp(messages)
            else:
                await self._send_tcp(messages)

    async def _send_udp(self, messages: list[bytes]) -> None:
        if self._udp is None or self._udp.is_closing():
            loop = asyncio.get_running_loop()
            self._udp, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=(self.config.host, self.config.port)
            )
        for message in messages:
            self._udp.sendto(message[:_UDP_LIMIT])

    async def _send_tcp(self, messages: list[bytes]) -> None:
        if self._tcp is None or self._tcp.is_closing():
            _, self._tcp = await asyncio.open_connection(self.config.host, self.config.port)
        writer = self._tcp
        try:
            writer.write(b"".join(b"%d %s" % (len(m), m) for m in messages))
            await writer.drain()
        except BaseException:
            self._tcp = None
            writer.close()
            raise

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()
            self._tcp = None


# --- HTTP -------------------------------------------------------------------------------------


class HttpExport:
    """POSTs a JSON array of entries; any answer but 2xx is a failure (and retried)."""

    def __init__(self, config: HttpSink, headers: dict[str, str]) -> None:
        self.config = config
        parts = urlsplit(config.url)
        self.name = f"http {parts.scheme}://{parts.netloc}{parts.path}"
        self.batch_size = config.batch_size
        self._origin = Origin(config.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._head = (
            f"POST {target} HTTP/1.1\r\nhost: {self._origin.host_header}\r\n"
            f"content-type: application/json\r\nuser-agent: gatewise\r\n{extra}"
        )
        timeout = config.timeout_seconds
        self._timeout = timeout
        self._client = HTTPClient(limit=2, connect_timeout=timeout)

    async def send(self, entries: Sequence[Entry]) -> None:
        body = orjson.dumps([exported(entry) for entry in entries])
        head = f"{self._head}content-length: {len(body)}\r\n\r\n".encode("latin-1")
        timeout = self._timeout
        async with asyncio.timeout(timeout):
            response = await self._client.request(
                self._origin,
                head,
                body,
                first_byte_timeout=timeout,
                idle_timeout=timeout,
                total_timeout=timeout,
            )
            await response.read()
        if not 200 <= response.status < 300:
            raise ClientError(f"HTTP {response.status}")

    async def close(self) -> None:
        await self._client.close()


# --- the exporter -----------------------------------------------------------------------------


class _Lane:
    """One sink, its queue and its counters."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.queue: deque[Entry] = deque()
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.task: asyncio.Task[None] | None = None
        #: Entries delivered; failed sends; entries dropped (queue full or retries spent).
        self.sent = 0
        self.failures = 0
        self.dropped = 0


class AuditExporter:
    """Fans committed entries out to the sinks (see the module doc)."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        *,
        queue_size: int = 10_000,
        max_retries: int = 5,
        retry_delay: float = 0.5,
        max_delay: float = 30.0,
        close_timeout: float = 5.0,
    ) -> None:
        self._lanes = [_Lane(sink) for sink in sinks]
        self._queue_size = queue_size
        self._max_retries = max_retries
        self._retry_delay = retry_delay
        self._max_delay = max_delay
        self._close_timeout = close_timeout
        self._closing = False

    @property
    def lanes(self) -> list[_Lane]:
        return self._lanes

    def counters(self) -> dict[str, dict[str, int]]:
        """Per sink: entries sent, failed sends, entries dropped (for logs and metrics)."""
        return {
            lane.sink.name: {"sent": lane.sent, "failures": lane.failures, "dropped": lane.dropped}
            for lane in self._lanes
        }

    def start(self) -> None:
        for lane in self._lanes:
            lane.task = asyncio.ensure_future(self._run(lane))

    def submit(self, entries: Sequence[Entry]) -> None:
        """Queue committed entries for every sink; never waits, never raises."""
        for lane in self._lanes:
            room = self._queue_size - len(lane.queue)
            if room < len(entries):
                lane.dropped += len(entries) - max(room, 0)
                log.warning(
                    "audit sink %s: queue full, %d entries dropped", lane.sink.name, lane.dropped
                )
            if room > 0:
                lane.queue.extend(entries[:room])
                lane.idle.clear()
                lane.wake.set()

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every sink has sent (or given up on) what was queued."""
        async with asyncio.timeout(timeout):
            for lane in self._lanes:
                await lane.idle.wait()

    async def close(self) -> None:
        """Send what is queued (``close_timeout`` at most), then stop."""
        self._closing = True
        for lane in self._lanes:
            lane.wake.set()
        tasks = [lane.task for lane in self._lanes if lane.task is not None]
        if tasks:
            _done, late = await asyncio.wait(tasks, timeout=self._close_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for lane in self._lanes:
            if lane.queue:
                log.warning(
                    "audit sink %s: %d entries not sent at shutdown",
                    lane.sink.name,
                    len(lane.queue),
                )
            with contextlib.suppress(Exception):
                await lane.sink.close()

    async def _run(self, lane: _Lane) -> None:
        while True:
            await lane.wake.wait()
            lane.wake.clear()
            while lane.queue:
                count = min(len(lane.queue), lane.sink.batch_size)
                batch = [lane.queue[i] for i in range(count)]
                if await self._deliver(lane, batch):
                    lane.sent += count
                else:
                    lane.dropped += count
                for _ in range(count):
                    lane.queue.popleft()
            lane.idle.set()
            if self._closing:
                return

    async def _deliver(self, lane: _Lane, batch: list[Entry]) -> bool:
        for attempt in range(self._max_retries + 1):
            try:
                await lane.sink.send(batch)
            except Exception as exc:
                lane.failures += 1
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if attempt == self._max_retries or self._closing:
                    log.error(
                        "audit sink %s: %d entries not sent: %s", lane.sink.name, len(batch), reason
                    )
                    return False
                delay = min(self._max_delay, self._retry_delay * 2**attempt)
                log.warning(
                    "audit sink %s: send failed (%s); retrying in %.1f s",
                    lane.sink.name,
                    reason,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            return True
        return False


def build_exporter(config: AuditConfig, resolve: Callable[[str], str]) -> AuditExporter | None:
    """The configured sinks' exporter (None without sinks); ``resolve`` turns a header's
    secret reference into its value (a missing one fails start-up)."""
    sinks: list[Sink] = []
    for sink in config.sinks:
        if isinstance(sink, SyslogSink):
            sinks.append(SyslogExport(sink))
            continue
        headers: dict[str, str] = {}
        for name, reference in sink.headers.items():
            value = resolve(reference)
            if any(ch in value for ch in "\r\n\0"):
                raise ValueError(
                    f"observability.audit.sinks: header {name}: the value of {reference} "
                    "holds a line break"
                )
            headers[name] = value
        sinks.append(HttpExport(sink, headers))
    if not sinks:
        return None
    return AuditExporter(sinks, queue_size=config.queue_size, max_retries=config.max_retries)

"""Audit export to a SIEM over real loopback sockets: syslog (RFC 5424, UDP and TCP) and
HTTP; failures retried and counted, a dead sink never blocks, committed identity changes
reach the sinks with their chain hash."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from gatewise.config.audit import AuditConfig, SyslogSink
from gatewise.config.models import Config
from gatewise.config.secrets import resolve_reference
from gatewise.identity.records import Actor
from gatewise.observe.audit_setup import audit_service
from gatewise.observe.audit_sinks import AuditExporter, SyslogExport, build_exporter
from gatewise.store import audit_chain
from gatewise.store.engine import Database
from gatewise.store.identity import IdentityStore
from gatewise.store.tables import audit_log
from gatewise.testing.webhook_receiver import WebhookReceiver

TOKEN = "siem-token-0123456789"
# <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] BOM MSG; auth (4) * 8 + notice (5) = 37
RFC5424 = re.compile(
    rb"^<37>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (\S+) gatewise (\d+) (\S+) "
    rb'\[gatewise@32473 seq="(\d+)" hash="([0-9a-f]{64})" prev_hash="([0-9a-f]{64})"\] '
    rb"\xef\xbb\xbf(\{.*\})$",
    re.S,
)


def chained(count: int) -> list[audit_chain.Entry]:
    """Entries as ``append`` returns them (chained from the start)."""
    prev, entries = audit_chain.GENESIS, []
    for n in range(1, count + 1):
        entry: dict[str, Any] = {
            "at": 1_750_000_000.5 + n,
            "actor": "key:key_1",
            "actor_tenant_id": "ten_a",
            "action": "guardrail_block",
            "object_type": "guardrail",
            "object_id": "pii",
            "tenant_id": "ten_a",
            "before": None,
            "after": {"category": "email"},
            "request_id": f"req_{n}",
            "seq": n,
            "prev_hash": prev,
        }
        prev = entry["hash"] = audit_chain.chain_hash(prev, entry)
        entries.append(entry)
    return entries


def check_message(message: bytes, entry: audit_chain.Entry) -> None:
    found = RFC5424.match(message)
    assert found is not None, message
    stamp, _host, _pid, msgid, seq, digest, prev, body = found.groups()
    assert stamp.startswith(b"2025-06-15T") and msgid == b"guardrail_block"
    assert (int(seq), digest.decode(), prev.decode()) == (
        entry["seq"],
        entry["hash"],
        entry["prev_hash"],
    )
    document = orjson.loads(body)
    assert document["request_id"] == entry["request_id"]
    # The receiver can check the chain on its own copy.
    assert audit_chain.chain_hash(document["prev_hash"], document) == document["hash"]


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait(data)


async def test_syslog_over_udp_sends_one_rfc5424_message_per_entry() -> None:
    loop = asyncio.get_running_loop()
    transport, listener = await loop.create_datagram_endpoint(
        _Datagrams, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    sink = SyslogExport(SyslogSink(type="syslog", host="127.0.0.1", port=port))
    exporter = AuditExporter([sink])
    exporter.start()
    try:
        entries = chained(3)
        exporter.submit(entries)
        received = [await asyncio.wait_for(listener.received.get(), 5) for _ in entries]
        for message, entry in zip(received, entries, strict=True):
            check_message(message, entry)
        await exporter.flush()
        assert exporter.counters()[sink.name] == {"sent": 3, "failures": 0, "dropped": 0}
    finally:
        await exporter.close()
        transport.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_syslog_over_tcp_frames_messages_and_retries_until_the_server_is_up() -> None:
    port = _free_port()
    config = SyslogSink(type="syslog", host="127.0.0.1", port=port, protocol="tcp")
    sink = SyslogExport(config)
    exporter = AuditExporter([sink], retry_delay=0.05, max_delay=0.2, max_retries=50)
    exporter.start()
    frames: asyncio.Queue[bytes] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # octet counting: "LEN SP MSG"
            try:
                length = int((await reader.readuntil(b" ")).decode()[:-1])
                frames.put_nowait(await reader.readexactly(length))
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                return

    entries = chained(4)
    exporter.submit(entries)  # nothing listens yet: the send fails and is retried
    server = None
    try:
        await asyncio.sleep(0.2)
        assert exporter.counters()[sink.name]["failures"] >= 1
        server = await asyncio.start_server(serve, "127.0.0.1", port)
        received = [await asyncio.wait_for(frames.get(), 10) for _ in entries]
        for message, entry in zip(received, entries, strict=True):
            check_message(message, entry)
        await exporter.flush()
        counters = exporter.counters()[sink.name]
        assert counters["sent"] == 4 and counters["dropped"] == 0
    finally:
        await exporter.close()
        if server is not None:
            server.close()


async def test_http_sink_posts_batches_with_its_secret_header_and_retries_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GW_TEST_SIEM_TOKEN", f"Bearer {TOKEN}")
    async with WebhookReceiver() as receiver:
        config = AuditConfig.model_validate(
            {
                "sinks": [
                    {
                        "type": "http",
                        "url": receiver.url,
                        "headers": {"Authorization": "${env:GW_TEST_SIEM_TOKEN}"},
                        "batch_size": 2,
                    }
                ]
            }
        )
        exporter = build_exporter(config, resolve_reference)
        assert exporter is not None
        exporter._retry_delay = 0.05  # (the default backoff starts at half a second)
        receiver.fail_next(2, 503)
        exporter.start()
        try:
            entries = chained(5)
            exporter.submit(entries)
            await exporter.flush()
            accepted = receiver.accepted
            assert [len(d.json) for d in accepted] == [2, 2, 1]
            assert [e["seq"] for d in accepted for e in d.json] == [1, 2, 3, 4, 5]
            assert all(d.headers["authorization"] == f"Bearer {TOKEN}" for d in receiver.received)
            assert accepted[0].json[0]["hash"] == entries[0]["hash"]
            assert accepted[0].json[0]["time"] == "2025-06-15T15:06:41.500000Z"
            counters = next(iter(exporter.counters().values()))
            assert counters == {"sent": 5, "failures": 2, "dropped": 0}
        finally:
            await exporter.close()


async def test_a_dead_sink_never_blocks_and_drops_what_does_not_fit() -> None:
    async with WebhookReceiver() as receiver:
        receiver.hang_next(100)
        config = AuditConfig.model_validate(
            {
                "sinks": [{"type": "http", "url": receiver.url, "timeout_seconds": 0.2}],
                "queue_size": 10,
                "max_retries": 1,
            }
        )
        exporter = build_exporter(config, lambda ref: ref)
        assert exporter is not None
        exporter._retry_delay = 0.05
        exporter.start()
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            for entry in chained(25):
                exporter.submit([entry])
            assert loop.time() - started < 0.05  # queued, never sent inline
            await exporter.flush(timeout=10)
            counters = next(iter(exporter.counters().values()))
            assert counters["sent"] == 0
            assert counters["dropped"] == 25  # 15 had no room, 10 were given up on
            assert counters["failures"] >= 2
        finally:
            await exporter.close()


# --- committed entries reach the sinks --------------------------------------------------------


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/records.db")
    await database.start()
    try:
        yield database
    finally:
        await database.close()


async def test_identity_changes_and_the_config_load_are_exported_after_commit(
    database: Database, tmp_path: Path
) -> None:
    async with WebhookReceiver() as receiver:
        config = Config.model_validate(
            {"observability": {"audit": {"sinks": [{"type": "http", "url": receiver.url}]}}}
        )
        service = audit_service(config, database, tmp_path)
        service.start()
        try:
            store = IdentityStore(database)
            await store.create_tenant(Actor(name="cli:root"), name="acme")
            await store.record_refusal(
                Actor(name="unauthenticated"),
                object_type="key",
                object_id="",
                tenant_id=None,
                attempt={"status": 401},
            )
            await service.writer.flush()
            assert service.exporter is not None
            await service.exporter.flush()
        finally:
            await service.close()
        sent = [entry for delivery in receiver.accepted for entry in delivery.json]
        assert sorted(e["action"] for e in sent) == ["config_load", "create", "refuse"]
        load = next(e for e in sent if e["action"] == "config_load")
        assert load["after"]["source"] == str(tmp_path) and len(load["object_id"]) == 64
        report = await audit_chain.verify(database.engine)
        assert report.intact and report.entries == 3
        assert {e["hash"] for e in sent} == {await _hash_of(database, seq) for seq in (1, 2, 3)}


async def _hash_of(database: Database, seq: int) -> str:
    async with database.engine.connect() as connection:
        query = sa.select(audit_log.c.hash).where(audit_log.c.seq == seq)
        return str((await connection.execute(query)).scalar_one())


def test_a_reload_swapped_in_is_a_config_load(tmp_path: Path) -> None:
    """A running gateway (real sockets) whose generation is swapped: the start and the
    reload are both ``config_load`` entries, with the digests of the two configs."""
    from gatewise.observe.audit_events import config_digest
    from gatewise.runtime.generation import build_generation
    from gatewise.testing.gateway import run_gateway_in_thread

    url = f"sqlite+aiosqlite:///{tmp_path}/records.db"
    first = Config.model_validate({"auth": {"mode": "open"}, "store": {"url": url}})
    second = Config.model_validate(
        {"auth": {"mode": "open"}, "store": {"url": url}, "server": {"access_log": True}}
    )
    with run_gateway_in_thread(first) as gateway:
        app = gateway.app
        new = build_generation(second, app.services)
        asyncio.run_coroutine_threadsafe(app.swap(new), gateway.loop).result(timeout=10)
        assert app.services.audit is not None
        flushed = asyncio.run_coroutine_threadsafe(app.services.audit.writer.flush(), gateway.loop)
        flushed.result(timeout=10)

    async def loads() -> list[tuple[str, str]]:
        database = Database(url)
        await database.start()
        try:
            async with database.engine.connect() as connection:
                query = sa.select(audit_log.c.object_id, audit_log.c.after).order_by(
                    audit_log.c.seq
                )
                rows = (await connection.execute(query)).all()
            assert (await audit_chain.verify(database.engine)).intact
        finally:
            await database.close()
        return [(row[0], row[1]["source"]) for row in rows]

    assert asyncio.run(loads()) == [
        (config_digest(first), "(in memory)"),
        (config_digest(second), "reload"),
    ]

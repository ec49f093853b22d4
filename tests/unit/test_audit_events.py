"""The audit trail's pure parts: the hash's canonical form, the guardrail-block observer (no
text ever, rate-limited), config entries, the syslog format and the section's validation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from gatewise.config.audit import AuditConfig
from gatewise.config.models import Config
from gatewise.core.context import GuardrailVerdict, RequestContext
from gatewise.identity.principal import Principal
from gatewise.identity.roles import Role
from gatewise.observe.audit_events import (
    AuditWriter,
    GuardrailBlocks,
    config_digest,
    config_loaded,
    config_rejected,
)
from gatewise.observe.audit_sinks import syslog_message
from gatewise.store import audit_chain
from gatewise.store.engine import Database

ENTRY: dict[str, Any] = {
    "at": 1_750_000_000.25,
    "actor": "cli:root",
    "actor_tenant_id": None,
    "action": "create",
    "object_type": "tenant",
    "object_id": "ten_1",
    "tenant_id": "ten_1",
    "before": None,
    "after": {"name": "acme", "weight": 2.0, "nested": [{"b": 1, "a": 0.5}]},
    "request_id": "req_1",
}


def test_the_canonical_form_ignores_key_order_and_whole_float_spelling() -> None:
    shuffled = dict(reversed(list(ENTRY.items())))
    shuffled["after"] = {"nested": [{"a": 0.5, "b": 1.0}], "weight": 2, "name": "acme"}
    assert audit_chain.canonical(shuffled) == audit_chain.canonical(ENTRY)
    extra = {**ENTRY, "seq": 9, "id": 4, "hash": "x"}  # not covered: the chain places it
    assert audit_chain.canonical(extra) == audit_chain.canonical(ENTRY)
    assert orjson.loads(audit_chain.canonical(ENTRY))["at"] == 1_750_000_000.25


@pytest.mark.parametrize(
    "change",
    [
        {"actor": "cli:mallory"},
        {"at": 1_750_000_000.26},
        {"action": "delete"},
        {"tenant_id": None},
        {"after": {"name": "acme", "weight": 2.5, "nested": [{"b": 1, "a": 0.5}]}},
        {"before": {}},
        {"request_id": "req_2"},
    ],
)
def test_any_change_to_a_covered_field_changes_the_hash(change: dict[str, Any]) -> None:
    original = audit_chain.chain_hash(audit_chain.GENESIS, ENTRY)
    assert audit_chain.chain_hash(audit_chain.GENESIS, {**ENTRY, **change}) != original


def test_the_hash_depends_on_the_previous_one() -> None:
    first = audit_chain.chain_hash(audit_chain.GENESIS, ENTRY)
    assert len(first) == 64 and int(first, 16) >= 0
    assert audit_chain.chain_hash(first, ENTRY) != first


# --- guardrail blocks -------------------------------------------------------------------------


def principal() -> Principal:
    return Principal(
        kind="key",
        name="key:key_abc",
        owner="app:app_1",
        role=Role.DEVELOPER,
        tenant_id="ten_a",
        app_id="app_1",
        key_id="key_abc",
    )


def blocked_context(request_id: str = "req_b") -> RequestContext:
    ctx = RequestContext(request_id, method="POST", path="/v1/chat/completions")
    ctx.operation, ctx.model, ctx.status = "chat", "gpt-4o", 400
    ctx.principal = principal()
    ctx.guardrail_profile = "strict"
    ctx.guardrails = [
        GuardrailVerdict("pii", "PHONE", 0.9, "mask", "input", 0, ((3, 12, "PHONE"),)),
        GuardrailVerdict("pii", "EMAIL", 1.0, "block", "input", 0, ((10, 30, "EMAIL"),)),
        GuardrailVerdict("secrets", "aws_key", 1.0, "block", "input", 0, ((0, 20, "aws"),)),
    ]
    return ctx


def writer() -> AuditWriter:
    return AuditWriter(Database("sqlite+aiosqlite://"), max_queue=1000)


def queued(audit: AuditWriter) -> list[dict[str, Any]]:
    return list(audit._queue)


def test_a_blocked_request_becomes_one_entry_without_text() -> None:
    audit = writer()
    GuardrailBlocks(audit).finished(blocked_context())
    (entry,) = queued(audit)
    assert entry["action"] == "guardrail_block"
    assert (entry["object_type"], entry["object_id"]) == ("guardrail", "pii")
    assert (entry["actor"], entry["actor_tenant_id"], entry["tenant_id"]) == (
        "key:key_abc",
        "ten_a",
        "ten_a",
    )
    assert entry["request_id"] == "req_b"
    after = entry["after"]
    assert (after["category"], after["direction"], after["index"]) == ("EMAIL", "input", 0)
    assert after["blocks"] == [
        {"guardrail": "pii", "category": "EMAIL", "direction": "input"},
        {"guardrail": "secrets", "category": "aws_key", "direction": "input"},
    ]
    assert (after["profile"], after["model"], after["status"]) == ("strict", "gpt-4o", 400)
    assert "spans" not in orjson.dumps(entry).decode()  # not even where the text was


def test_requests_without_a_block_are_not_audited() -> None:
    audit = writer()
    observer = GuardrailBlocks(audit)
    ctx = blocked_context()
    ctx.guardrails = [v for v in ctx.guardrails if v.action != "block"]
    observer.finished(ctx)
    observer.finished(RequestContext("req_plain"))
    assert queued(audit) == []


def test_blocks_are_rate_limited_and_the_rest_counted() -> None:
    audit = writer()
    observer = GuardrailBlocks(audit, per_second=0.001, burst=3)
    for n in range(10):
        observer.finished(blocked_context(f"req_{n}"))
    assert [e["request_id"] for e in queued(audit)] == ["req_0", "req_1", "req_2"]
    assert observer.skipped == 7


def test_a_full_writer_queue_drops_and_counts() -> None:
    audit = AuditWriter(Database("sqlite+aiosqlite://"), max_queue=2)
    results = [audit.submit(dict(ENTRY)) for _ in range(5)]
    assert results == [True, True, False, False, False] and audit.dropped == 3


# --- config loads -----------------------------------------------------------------------------


def test_config_entries_carry_the_digest_and_never_a_secret() -> None:
    config = Config.model_validate({"auth": {"mode": "open"}})
    loaded = config_loaded(config, "/etc/gatewise")
    assert loaded["action"] == "config_load"
    assert loaded["object_id"] == loaded["after"]["sha256"] == config_digest(config)
    assert config_digest(config) == config_digest(Config.model_validate({"auth": {"mode": "open"}}))
    assert config_digest(Config()) != config_digest(config)
    leaked = "providers.up.api_key: sk-proj-abcdefghijklmnopqrstuvwxyz012345 is a literal secret"
    rejected = config_rejected("/etc/gatewise/new.yaml", leaked, text=b"x: 1", serving=config)
    assert rejected["action"] == "config_reject"
    assert "sk-proj-" not in orjson.dumps(rejected).decode()
    assert rejected["after"]["error"] == "providers.up.api_key: [secret] is a literal secret"
    assert rejected["before"] == {"sha256": config_digest(config)}
    assert len(rejected["object_id"]) == 64


# --- syslog and the section -------------------------------------------------------------------


def test_a_syslog_message_follows_rfc_5424() -> None:
    entry = {**ENTRY, "seq": 7, "prev_hash": "a" * 64, "hash": "b" * 64, "action": "refuse"}
    message = syslog_message(entry, facility=10, app_name="gw", hostname="host one", procid=42)
    head, _, body = message.partition(b"\xef\xbb\xbf")
    assert head == (
        b"<85>1 2025-06-15T15:06:40.250000Z hostone gw 42 refuse "
        b'[gatewise@32473 seq="7" hash="' + b"b" * 64 + b'" prev_hash="' + b"a" * 64 + b'"] '
    )
    document = orjson.loads(body)
    assert document["seq"] == 7 and document["time"] == "2025-06-15T15:06:40.250000Z"


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        ({"type": "http", "url": "ftp://siem"}, "http:// or https://"),
        ({"type": "http", "url": "https://u:p@siem/in"}, "must not embed credentials"),
        (
            {"type": "http", "url": "https://siem/in", "headers": {"authorization": "Bearer x"}},
            "secrets must be references",
        ),
        (
            {"type": "http", "url": "https://siem/in", "headers": {"host": "${env:X}"}},
            "is set by the gateway",
        ),
        ({"type": "syslog", "host": "siem", "facility": "local9"}, "local7"),
        ({"type": "syslog", "host": "siem", "protocol": "tls"}, "'udp' or 'tcp'"),
        ({"type": "kafka", "host": "siem"}, "does not match any of the expected tags"),
    ],
)
def test_bad_sinks_are_refused_with_a_precise_message(sink: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AuditConfig.model_validate({"sinks": [sink]})
    assert message in str(caught.value)


def test_good_sinks_validate() -> None:
    config = AuditConfig.model_validate(
        {
            "sinks": [
                {"type": "syslog", "host": "127.0.0.1", "protocol": "tcp", "facility": "local3"},
                {
                    "type": "http",
                    "url": "https://siem.example/in",
                    "headers": {"Authorization": "${env:SIEM_TOKEN}"},
                },
            ],
            "guardrail_blocks": False,
        }
    )
    assert [sink.type for sink in config.sinks] == ["syslog", "http"]

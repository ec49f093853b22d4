"""Request records: the raw record built on the hot path, the row prepared off it, privacy
modes (bodies kept, redacted, or not captured at all), and the writer's queue bounds."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from gatewise.config.records import RecordsConfig
from gatewise.core.context import Attempt, GuardrailVerdict, RequestContext
from gatewise.core.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    Message,
    ResponseMessage,
    Usage,
)
from gatewise.observe.record_bodies import RecordBodies, privacy_of, request_text
from gatewise.observe.records import RequestRecords, prepare, redact
from gatewise.store.records import COLUMNS, parse_statuses
from gatewise.store.records_spill import SpillFiles
from gatewise.store.records_writer import RecordsWriter

SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0"
EMAIL = "jane.doe@example.com"


class Caller:
    name = "key:k1"
    owner = "app:a1"
    tenant_id: str | None = "ten_1"
    team_id = "team_1"
    app_id = "app_1"
    user_id = None
    key_id = "key_1"


class Sink:
    """A database stand-in that keeps rows, or refuses them while ``down``."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.down = False

    async def insert(self, rows: Any) -> None:
        if self.down:
            raise ConnectionError("database unreachable")
        self.rows.extend(rows)


class Capture:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def submit(self, record: Any) -> bool:
        self.records.append(record)
        return True


def finished_context() -> RequestContext:
    ctx = RequestContext("req_abc", "POST", "/v1/chat/completions", operation="chat")
    ctx.model = "gpt-4o-mini"
    ctx.started -= 0.1  # the call took 100 ms
    ctx.principal = Caller()
    ctx.headers = {
        b"user-agent": b"OpenAI/Python 1.0",
        b"authorization": b"Bearer " + SECRET.encode(),
    }
    ctx.client_ip = "10.0.0.7"
    ctx.attempts = [
        Attempt("up", "gpt-4o-mini", status=503, error="upstream_error", first_byte_ms=4.0,
                duration_ms=5.0, deployment="dep-a"),
        Attempt("up2", "gpt-4o", status=200, first_byte_ms=20.0, duration_ms=30.0,
                deployment="dep-b"),
    ]  # fmt: skip
    ctx.usage = Usage(12, 5, 17, prompt_tokens_details={"cached_tokens": 3})
    ctx.cost_micros = 1234
    ctx.guardrails = [
        GuardrailVerdict(
            "pii", "EMAIL_ADDRESS", 0.9, "mask", "input", 0, ((9, 29, "EMAIL_ADDRESS"),)
        )
    ]
    ctx.decisions = ["failover:dep-a:503", "limited:requests"]
    return ctx


def build(ctx: RequestContext) -> dict[str, Any]:
    capture = Capture()
    RequestRecords(capture).finished(ctx)  # type: ignore[arg-type]
    assert len(capture.records) == 1
    (row,) = prepare(capture.records)
    assert len(row) == len(COLUMNS)
    return dict(zip(COLUMNS, row, strict=True))


def test_a_finished_request_becomes_one_row_with_every_field() -> None:
    ctx = finished_context()
    row = build(ctx)
    assert row["id"] == "req_abc" and len(row["trace_id"]) == 32
    assert (row["tenant_id"], row["team_id"], row["app_id"], row["key_id"]) == (
        "ten_1", "team_1", "app_1", "key_1",
    )  # fmt: skip
    assert (row["front_door"], row["operation"], row["model"]) == ("openai", "chat", "gpt-4o-mini")
    assert (row["deployment"], row["provider"]) == ("dep-b", "up2")
    assert (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"]) == (12, 5, 3)
    assert row["cost_micros"] == 1234 and row["status"] == 200
    assert row["user_agent"] == "OpenAI/Python 1.0" and row["client_ip"] == "10.0.0.7"
    attempts = orjson.loads(row["attempts"])
    assert [(a["deployment"], a["status"], a["error"]) for a in attempts] == [
        ("dep-a", 503, "upstream_error"),
        ("dep-b", 200, None),
    ]
    assert orjson.loads(row["decisions"]) == ["failover:dep-a:503", "limited:requests"]
    verdicts = orjson.loads(row["guardrails"])
    assert verdicts[0]["category"] == "EMAIL_ADDRESS" and verdicts[0]["spans"] == [
        [9, 29, "EMAIL_ADDRESS"]
    ]
    # Timing: the last attempt began after the rest of the call; overhead excludes attempts.
    assert row["first_byte_ms"] == pytest.approx(row["duration_ms"] - 30.0 + 20.0)
    assert row["overhead_ms"] == pytest.approx(row["duration_ms"] - 35.0)
    assert row["duration_ms"] >= 100.0
    assert (row["privacy"], row["request_body"], row["response_body"]) == ("off", None, None)
    assert SECRET not in repr(row)  # the key in the headers never reaches a record


def test_health_probes_are_not_recorded_but_refusals_are() -> None:
    capture = Capture()
    records = RequestRecords(capture)  # type: ignore[arg-type]
    records.finished(RequestContext("req_h", "GET", "/healthz"))
    assert capture.records == []
    refused = RequestContext("req_401", "POST", "/v1/chat/completions", status=401)
    refused.error_type = "authentication_error"
    records.finished(refused)
    row = dict(zip(COLUMNS, prepare(capture.records)[0], strict=True))
    assert (row["status"], row["error_type"], row["tenant_id"], row["attempts"]) == (
        401, "authentication_error", None, None,
    )  # fmt: skip


def test_oversized_values_are_cut_to_their_columns() -> None:
    ctx = finished_context()
    ctx.model = "m" * 1000
    ctx.headers = {b"user-agent": b"a\x00" * 600}
    row = build(ctx)
    assert len(row["model"]) == 256
    assert row["user_agent"] == "a" * 512


def test_redaction_replaces_personal_data_and_secrets() -> None:
    text = f"mail {EMAIL} with key {SECRET} please"
    redacted = redact(text)
    assert EMAIL not in redacted and SECRET not in redacted
    assert "[EMAIL_ADDRESS]" in redacted and "please" in redacted
    assert redact("nothing here") == "nothing here"


@pytest.mark.parametrize("mode", ["full", "redacted"])
def test_bodies_follow_the_privacy_mode(mode: str) -> None:
    ctx = finished_context()
    ctx.privacy = mode
    ctx.request_text = f"user: reach me at {EMAIL}"
    ctx.reply_text = f"your key is {SECRET}"
    row = build(ctx)
    assert row["privacy"] == mode
    if mode == "full":
        assert EMAIL in row["request_body"] and SECRET in row["response_body"]
    else:
        assert EMAIL not in row["request_body"] and "[EMAIL_ADDRESS]" in row["request_body"]
        assert SECRET not in row["response_body"]


class Directory:
    def __init__(self) -> None:
        self.tenants_by_id = {"ten_1": _Tenant("acme"), "ten_2": _Tenant("globex")}


class _Tenant:
    def __init__(self, name: str) -> None:
        self.name = name


def test_privacy_per_tenant_by_name() -> None:
    config = RecordsConfig(privacy="off", tenants={"acme": {"privacy": "redacted"}})  # type: ignore[arg-type]
    assert config.keeps_bodies
    mode = privacy_of(config, lambda: Directory())  # type: ignore[arg-type,return-value]
    other = Caller()
    other.tenant_id = "ten_2"
    assert (mode(Caller()), mode(other), mode(None)) == ("redacted", "off", "off")
    assert not RecordsConfig().keeps_bodies


def chat_call(privacy: str) -> Any:
    from gatewise.corridor.call import Call

    request = ChatRequest(model="m", messages=[Message(role="system", content="be brief"),
                                                Message(role="user", content="hello")])  # fmt: skip
    ctx = RequestContext("req_b")
    call = Call.__new__(Call)
    call.ctx, call.principal, call.request, call.notes = ctx, Caller(), request, {}
    return call, RecordBodies(lambda caller: privacy)


def test_the_bodies_step_captures_request_and_reply_for_a_keeping_tenant() -> None:
    call, step = chat_call("full")

    async def run() -> None:
        await step.before(call)
        reply = ChatResponse(choices=[Choice(index=0, message=ResponseMessage(content="hi there"))])
        assert await step.after(call, reply) is reply

    asyncio.run(run())
    assert step.watches(call)
    assert call.ctx.request_text == "system: be brief\nuser: hello"
    assert call.ctx.reply_text == "hi there"


def test_the_bodies_step_joins_a_streams_deltas() -> None:
    call, step = chat_call("redacted")

    async def run() -> None:
        await step.before(call)
        for piece in ("Hel", "lo", None):
            chunk = ChatChunk(choices=[ChunkChoice(index=0, delta=Delta(content=piece))])
            await step.on_chunks(call, [chunk])
        step.finish(call)

    asyncio.run(run())
    assert call.ctx.reply_text == "Hello"


def test_the_bodies_step_captures_nothing_and_keeps_raw_relay_for_off() -> None:
    call, step = chat_call("off")
    asyncio.run(step.before(call))
    assert not step.watches(call)
    assert (call.ctx.privacy, call.ctx.request_text) == (None, None)
    assert request_text(call.request).startswith("system:")


def test_statuses_parse_and_refuse_nonsense() -> None:
    assert parse_statuses("200, 4xx") == ((200, 200), (400, 499))
    with pytest.raises(ValueError, match="'abc' is not a status"):
        parse_statuses("abc")


# --- the writer ---------------------------------------------------------------------------------


def raw_records(count: int, start: int = 0) -> list[Any]:
    capture = Capture()
    observer = RequestRecords(capture)  # type: ignore[arg-type]
    for n in range(start, start + count):
        ctx = finished_context()
        ctx.request_id = f"req_{n}"
        observer.finished(ctx)
    return capture.records


def test_overflow_drop_counts_what_does_not_fit() -> None:
    async def run() -> tuple[int, int, int]:
        sink = Sink()
        writer = RecordsWriter(sink, prepare, max_queue=10, overflow="drop", flush_interval=60)
        writer.start()
        accepted = [writer.submit(record) for record in raw_records(15)]
        depth = writer.depth
        await writer.close()
        assert accepted.count(True) == 10
        return depth, writer.dropped, len(sink.rows)

    assert asyncio.run(run()) == (10, 5, 10)


def test_overflow_spills_and_an_unreachable_database_spills_then_replays(tmp_path: Path) -> None:
    async def run() -> None:
        sink = Sink()
        sink.down = True
        spill = SpillFiles(tmp_path / "spill")
        writer = RecordsWriter(sink, prepare, max_queue=10, batch_size=5, flush_interval=0.05,
                               overflow="spill", spill=spill, max_retries=0)  # fmt: skip
        writer.start()
        for record in raw_records(25):
            writer.submit(record)
        await asyncio.sleep(0.3)
        assert writer.spilled == 25 and writer.dropped == 0 and sink.rows == []
        assert list((tmp_path / "spill").glob("*.spill"))
        sink.down = False
        writer.replay_soon()
        for record in raw_records(3, start=100):
            writer.submit(record)
        await asyncio.sleep(0.3)
        await writer.close()
        ids = sorted(row[0] for row in sink.rows)
        assert ids == sorted([f"req_{n}" for n in range(25)] + ["req_100", "req_101", "req_102"])
        assert writer.replayed == 25 and writer.depth == 0
        assert not (tmp_path / "spill").exists()  # every file replayed and removed

    asyncio.run(run())


def test_close_spills_what_the_database_does_not_take_and_a_new_writer_replays_it(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        sink = Sink()
        sink.down = True
        writer = RecordsWriter(sink, prepare, flush_interval=60, spill=SpillFiles(tmp_path))
        writer.start()
        for record in raw_records(7):
            writer.submit(record)
        await writer.close()
        assert writer.spilled == 7 and not writer.submit(raw_records(1)[0])
        assert writer.dropped == 1  # closed: refused and counted
        sink.down = False
        again = RecordsWriter(sink, prepare, flush_interval=60, spill=SpillFiles(tmp_path))
        again.start()
        await asyncio.sleep(0.1)
        await again.close()
        assert sorted(row[0] for row in sink.rows) == [f"req_{n}" for n in range(7)]

    asyncio.run(run())

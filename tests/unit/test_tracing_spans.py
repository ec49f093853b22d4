"""A finished request's span tree, exported to OpenTelemetry's in-memory exporter."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gatewise.config.tracing import TracingConfig
from gatewise.core.context import Attempt, GuardrailVerdict, RequestContext
from gatewise.core.types import Usage
from gatewise.observe.genai import SCHEMA_URL
from gatewise.observe.spans import SpanExport, build_span_export
from gatewise.observe.traceparent import accept, upstream_lines
from gatewise.observe.tracing import Tracing

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@dataclass
class Caller:
    name: str = "app-a"
    owner: str = "acme"
    tenant_id: str | None = "t_1"
    team_id: str | None = None
    app_id: str | None = None
    user_id: str | None = None
    key_id: str | None = None


def pipeline(ratio: float = 1.0) -> tuple[Tracing, SpanExport, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    export = SpanExport(SimpleSpanProcessor(exporter), "gw-test")
    config = TracingConfig(enabled=True, exporter="none", sample_ratio=ratio)
    return Tracing(config, export, {"primary": "openai", "backup": "anthropic"}), export, exporter


def attempt(tracing: Tracing, ctx: RequestContext, provider: str, **fields: object) -> Attempt:
    """An attempt as dispatch makes it: its traceparent line first, then timed and told."""
    one = Attempt(provider, "upstream-model", deployment=f"{provider}/m")
    ctx.attempts.append(one)
    upstream_lines(ctx, one, tracing.trace_sampler)
    time.sleep(0.002)
    for name, value in fields.items():
        setattr(one, name, value)
    one.duration_ms = 2.0
    tracing.attempted(ctx, one)
    return one


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def test_a_failover_request_is_a_server_span_with_a_client_span_per_attempt() -> None:
    tracing, export, exporter = pipeline()
    ctx = RequestContext("req_abc", "POST", "/v1/chat/completions", operation="chat")
    ctx.model, ctx.principal = "gpt-4o", Caller()
    accept(ctx, f"00-{TRACE}-{PARENT}-01".encode(), b"rojo=00f067aa0ba902b7")
    failed = attempt(tracing, ctx, "primary", status=503, error="upstream_error")
    answered = attempt(tracing, ctx, "backup", status=200)
    ctx.guardrails.append(
        GuardrailVerdict("pii", "email", 0.9, "mask", "input", 0, ((3, 9, "email"),))
    )
    ctx.guardrails.append(GuardrailVerdict("secrets", "api_key", 1.0, "block", "output"))
    ctx.usage = Usage(prompt_tokens=11, completion_tokens=7, total_tokens=18)
    tracing.finished(ctx)
    assert exporter.get_finished_spans() == ()  # built off the event loop, not in finished()
    export.flush()
    spans = exporter.get_finished_spans()
    assert len(spans) == 5
    (server,) = by_name(spans, "chat gpt-4o")
    clients = by_name(spans, "chat upstream-model")
    guards = by_name(spans, "apply_guardrail")
    assert server.kind == SpanKind.SERVER and len(clients) == 2 and len(guards) == 2
    assert all(s.context.trace_id == int(TRACE, 16) for s in spans)
    # the server span hangs under the caller's span, with the caller's tracestate
    assert server.parent is not None and server.parent.span_id == int(PARENT, 16)
    assert server.context.trace_state.get("rojo") == "00f067aa0ba902b7"
    for child in (*clients, *guards):
        assert child.parent is not None and child.parent.span_id == server.context.span_id
    # each client span has the id its attempt sent upstream
    ids = {f"{span.context.span_id:016x}" for span in clients}
    assert ids == {failed.span_id, answered.span_id}
    first, second = sorted(clients, key=lambda s: s.start_time or 0)
    assert first.kind == second.kind == SpanKind.CLIENT
    assert first.status.status_code == StatusCode.ERROR
    assert first.attributes is not None and second.attributes is not None
    assert first.attributes["error.type"] == "upstream_error"
    assert first.attributes["gen_ai.provider.name"] == "openai"
    assert first.attributes["http.response.status_code"] == 503
    assert "gen_ai.usage.input_tokens" not in first.attributes
    assert second.attributes["gen_ai.provider.name"] == "anthropic"
    assert second.attributes["gen_ai.request.model"] == "upstream-model"
    assert second.attributes["gen_ai.usage.input_tokens"] == 11
    assert second.attributes["gen_ai.usage.output_tokens"] == 7
    assert "error.type" not in second.attributes
    attributes = server.attributes
    assert attributes is not None
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.usage.input_tokens"] == 11
    assert attributes["http.response.status_code"] == 200
    assert attributes["gatewise.request_id"] == "req_abc"
    assert attributes["gatewise.caller"] == "app-a"
    assert server.instrumentation_scope is not None
    assert server.instrumentation_scope.schema_url == SCHEMA_URL
    assert server.resource.attributes["service.name"] == "gw-test"
    # times: the attempts sit inside the request, in order
    assert server.start_time is not None and server.end_time is not None
    assert first.start_time is not None and first.end_time is not None
    assert second.start_time is not None and second.end_time is not None
    assert server.start_time <= first.start_time < first.end_time <= second.start_time
    assert second.end_time <= server.end_time
    assert second.end_time - second.start_time == 2_000_000
    # guardrails: types, scores and actions only
    pii = next(
        s for s in guards if s.attributes and s.attributes["gatewise.guardrail.name"] == "pii"
    )
    assert pii.attributes is not None
    assert pii.attributes["gen_ai.operation.name"] == "apply_guardrail"
    assert pii.attributes["gatewise.guardrail.action"] == "mask"
    assert pii.attributes["gatewise.guardrail.score"] == 0.9
    assert pii.attributes["gatewise.guardrail.found"] == ("email",)
    assert pii.end_time is not None and pii.end_time <= first.start_time


def test_an_error_status_marks_the_server_span() -> None:
    tracing, export, exporter = pipeline()
    ctx = RequestContext("req_e", "POST", "/v1/chat/completions", operation="chat", status=502)
    ctx.model, ctx.error_type = "gpt-4o", "upstream_error"
    attempt(tracing, ctx, "primary", status=500, error="upstream_error")
    tracing.finished(ctx)
    export.flush()
    (server,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.status.status_code == StatusCode.ERROR
    assert server.attributes is not None and server.attributes["error.type"] == "upstream_error"
    assert server.parent is None  # no caller context: a root span of the request's own trace
    assert f"{server.context.trace_id:032x}" == ctx.trace_id


def test_unsampled_and_health_check_requests_are_not_exported() -> None:
    tracing, export, exporter = pipeline(ratio=0.0)
    ctx = RequestContext("req_1", "POST", "/v1/chat/completions", operation="chat")
    tracing.finished(ctx)
    sampled_by_caller = RequestContext("req_2", "POST", "/v1/chat/completions", operation="chat")
    accept(sampled_by_caller, f"00-{TRACE}-{PARENT}-01".encode(), None)
    tracing.finished(sampled_by_caller)  # the caller's decision beats the ratio
    tracing, export2, exporter2 = pipeline(ratio=1.0)
    tracing.finished(RequestContext("req_3", "GET", "/healthz"))
    export.flush()
    export2.flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["chat"]
    assert exporter2.get_finished_spans() == ()


def test_a_request_without_a_model_call_is_an_http_server_span() -> None:
    tracing, export, exporter = pipeline()
    tracing.finished(RequestContext("req_m", "GET", "/v1/models", operation="models"))
    export.close()
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /v1/models" and span.kind == SpanKind.SERVER
    assert span.attributes is not None and "gen_ai.operation.name" not in span.attributes


def test_the_console_exporter_prints_the_spans(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_span_export(TracingConfig()) is None  # off
    assert build_span_export(TracingConfig(enabled=True, exporter="none")) is None
    export = build_span_export(TracingConfig(enabled=True, exporter="console"))
    assert export is not None
    ctx = RequestContext("req_c", "POST", "/v1/embeddings", operation="embeddings", model="emb")
    export.put(ctx, {})
    export.close()
    printed = capsys.readouterr().out
    assert '"name": "embeddings emb"' in printed and ctx.trace_id in printed

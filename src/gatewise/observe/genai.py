"""One request's span tree, in the OpenTelemetry GenAI semantic conventions (pinned: 1.37.0).

* a SERVER span for the request: ``{gen_ai.operation.name} {gen_ai.request.model}``
  for a model call (``GET /v1/models``-style ``{method} {path}`` otherwise), with the
  HTTP status, the caller's requested model, the provider that answered and the tokens;
* a CLIENT span per upstream attempt (failovers, retries and hedges each get one),
  named after the operation and the upstream model, with ``error.type`` when it
  failed; its span id is the one the attempt sent upstream in ``traceparent``;
* an ``apply_guardrail`` span per guardrail verdict. Semantic conventions 1.37 define
  no guardrail attributes, so they are ours (``gatewise.guardrail.*``): the rule, the
  category, the score, the action, the direction and the kinds of what was found,
  never the text itself.

No span carries a prompt, a completion, a header or a credential: only what the
request context recorded about them (``capture_content`` is always false).

Built from the times the request recorded (``perf_counter`` readings on the context,
anchored to the wall clock when the request finished), on ``observe.spans``'s thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from random import getrandbits
from typing import TYPE_CHECKING, Any, Protocol

from gatewise.core.context import Attempt, GuardrailVerdict, RequestContext

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Tracer

SEMCONV_VERSION = "1.37.0"
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"

#: The gateway's operations as ``gen_ai.operation.name`` values (others are plain HTTP).
OPERATIONS = {"chat": "chat", "responses": "chat", "embeddings": "embeddings", "prompt": "chat"}
#: Provider types as ``gen_ai.provider.name`` values (others go as their type name).
PROVIDER_NAMES = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
}
GUARDRAIL_OPERATION = "apply_guardrail"


class Ids(Protocol):
    """Where the tracer takes its next ids from (``observe.spans._PresetIds``)."""

    trace_id: int
    span_id: int


def _new_id() -> int:
    return getrandbits(64) or 1


def emit_request(
    tracer: Tracer,
    ids: Ids,
    ctx: RequestContext,
    provider_types: Mapping[str, str],
    now_ns: int,
    now_pc: float,
) -> None:
    """Start and end every span of ``ctx`` (which finished at ``now_ns`` / ``now_pc``)."""
    from opentelemetry import trace
    from opentelemetry.trace import (
        NonRecordingSpan,
        SpanContext,
        SpanKind,
        Status,
        StatusCode,
        TraceFlags,
        TraceState,
    )

    def at(reading: float) -> int:
        return now_ns - int((now_pc - reading) * 1e9)

    trace_id = int(ctx.trace_id, 16)
    ids.trace_id, ids.span_id = trace_id, _new_id()
    parent: Context | None = None
    if ctx.parent_span_id is not None:
        state = TraceState.from_header([ctx.tracestate.decode()]) if ctx.tracestate else None
        remote = SpanContext(
            trace_id,
            int(ctx.parent_span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
            trace_state=state,
        )
        parent = trace.set_span_in_context(NonRecordingSpan(remote))
    operation = OPERATIONS.get(ctx.operation)
    started = at(ctx.started)
    server = tracer.start_span(
        _server_name(ctx, operation),
        context=parent,
        kind=SpanKind.SERVER,
        attributes=_server_attributes(ctx, operation, provider_types),
        start_time=started,
    )
    if ctx.status >= 500:
        server.set_status(Status(StatusCode.ERROR))
    inside = trace.set_span_in_context(server)
    first_start, last_end = now_ns, started
    answered = _answering(ctx)
    for attempt in ctx.attempts:
        ids.span_id = int(attempt.span_id, 16) if attempt.span_id else _new_id()
        end = at(attempt.ended) if attempt.ended else now_ns
        start = end - int(attempt.duration_ms * 1e6)
        first_start, last_end = min(first_start, start), max(last_end, end)
        span = tracer.start_span(
            f"{operation or ctx.operation or 'chat'} {attempt.model}",
            context=inside,
            kind=SpanKind.CLIENT,
            attributes=_attempt_attributes(ctx, attempt, operation, provider_types, answered),
            start_time=start,
        )
        if attempt.error is not None:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)
    for verdict in ctx.guardrails:
        ids.span_id = _new_id()
        if verdict.direction == "output" and ctx.attempts:
            start, end = last_end, now_ns
        else:
            start, end = started, (first_start if ctx.attempts else now_ns)
        span = tracer.start_span(
            GUARDRAIL_OPERATION,
            context=inside,
            kind=SpanKind.INTERNAL,
            attributes=_guardrail_attributes(verdict),
            start_time=start,
        )
        span.end(end_time=max(start, end))
    server.end(end_time=now_ns)


def _server_name(ctx: RequestContext, operation: str | None) -> str:
    if operation is None:
        return f"{ctx.method} {ctx.path}"
    return f"{operation} {ctx.model}" if ctx.model else operation


def _answering(ctx: RequestContext) -> Attempt | None:
    """The attempt whose reply the caller got (the last one, when it did not fail)."""
    if ctx.attempts and ctx.attempts[-1].error is None and ctx.status < 400:
        return ctx.attempts[-1]
    return None


def _usage(ctx: RequestContext, attributes: dict[str, Any]) -> None:
    usage = ctx.usage
    if usage is not None:
        attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
        if usage.completion_tokens is not None:
            attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
    if ctx.response_model:
        attributes["gen_ai.response.model"] = ctx.response_model
    if ctx.finish_reasons:
        attributes["gen_ai.response.finish_reasons"] = tuple(ctx.finish_reasons)


def _server_attributes(
    ctx: RequestContext, operation: str | None, provider_types: Mapping[str, str]
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.request.method": ctx.method,
        "url.path": ctx.path,
        "http.response.status_code": ctx.status,
        "gatewise.request_id": ctx.request_id,
    }
    if ctx.status >= 400:
        attributes["error.type"] = ctx.error_type or str(ctx.status)
    if operation is not None:
        attributes["gen_ai.operation.name"] = operation
        if ctx.model:
            attributes["gen_ai.request.model"] = ctx.model
        if ctx.attempts:
            attributes["gen_ai.provider.name"] = _provider(ctx.attempts[-1], provider_types)
        _usage(ctx, attributes)
    if ctx.stream:
        attributes["gatewise.stream"] = True
    principal = ctx.principal
    if principal is not None:
        attributes["gatewise.caller"] = principal.name
        if principal.tenant_id:
            attributes["gatewise.tenant_id"] = principal.tenant_id
    if ctx.guardrail_profile:
        attributes["gatewise.guardrail_profile"] = ctx.guardrail_profile
    if ctx.decisions:
        attributes["gatewise.decisions"] = tuple(ctx.decisions)
    if ctx.cost_micros is not None:
        attributes["gatewise.cost_micros"] = ctx.cost_micros
    return attributes


def _provider(attempt: Attempt, provider_types: Mapping[str, str]) -> str:
    kind = provider_types.get(attempt.provider, attempt.provider)
    return PROVIDER_NAMES.get(kind, kind)


def _attempt_attributes(
    ctx: RequestContext,
    attempt: Attempt,
    operation: str | None,
    provider_types: Mapping[str, str],
    answered: Attempt | None,
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation or ctx.operation or "chat",
        "gen_ai.provider.name": _provider(attempt, provider_types),
        "gen_ai.request.model": attempt.model,
        "gatewise.provider": attempt.provider,
        "gatewise.request_id": ctx.request_id,
    }
    if attempt.deployment:
        attributes["gatewise.deployment"] = attempt.deployment
    if attempt.status is not None:
        attributes["http.response.status_code"] = attempt.status
    if attempt.error is not None:
        attributes["error.type"] = attempt.error
    if ctx.stream:
        attributes["gatewise.time_to_first_chunk_s"] = attempt.first_byte_ms / 1000.0
    if attempt is answered:
        _usage(ctx, attributes)
    return attributes


def _guardrail_attributes(verdict: GuardrailVerdict) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": GUARDRAIL_OPERATION,
        "gatewise.guardrail.name": verdict.guardrail,
        "gatewise.guardrail.category": verdict.category,
        "gatewise.guardrail.score": verdict.score,
        "gatewise.guardrail.action": verdict.action,
        "gatewise.guardrail.direction": verdict.direction,
        "gatewise.guardrail.index": verdict.index,
    }
    kinds = sorted({kind for _start, _end, kind in verdict.spans})
    if kinds:
        attributes["gatewise.guardrail.found"] = tuple(kinds)
    return attributes

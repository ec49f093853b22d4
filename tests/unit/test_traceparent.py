"""W3C trace context: strict parsing, the trace id every request gets, what goes upstream."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

from gatewise.core.context import Attempt, RequestContext
from gatewise.observe.traceparent import (
    accept,
    parse_traceparent,
    ratio_sampler,
    upstream_lines,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01".encode()


def test_a_valid_traceparent_gives_its_ids_and_sampled_flag() -> None:
    assert parse_traceparent(VALID) == (TRACE, PARENT, True)
    assert parse_traceparent(f"00-{TRACE}-{PARENT}-00".encode()) == (TRACE, PARENT, False)
    # a future version may add fields after a dash; its first four are read
    assert parse_traceparent(f"01-{TRACE}-{PARENT}-03-extra".encode()) == (TRACE, PARENT, True)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"garbage",
        f"00-{TRACE.upper()}-{PARENT}-01".encode(),  # upper-case hex
        f"00-{TRACE}-{PARENT}-01-extra".encode(),  # version 00 has exactly four fields
        f"ff-{TRACE}-{PARENT}-01".encode(),  # version ff is invalid
        f"00-{'0' * 32}-{PARENT}-01".encode(),  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01".encode(),  # all-zero parent id
        f"00-{TRACE[:-1]}-{PARENT}-01".encode(),  # short trace id
        f"00-{TRACE}-{PARENT}1-01".encode(),  # long parent id
        f"00-{TRACE}-{PARENT}-1".encode(),  # one flag digit
        f"00_{TRACE}_{PARENT}_01".encode(),
        f"01-{TRACE}-{PARENT}-01extra".encode(),  # a future version's extra needs a dash
    ],
)
def test_a_malformed_traceparent_is_refused(value: bytes) -> None:
    assert parse_traceparent(value) is None


def test_a_malformed_traceparent_leaves_the_request_a_trace_of_its_own() -> None:
    ctx = RequestContext("req_1")
    assert not accept(ctx, b"00-nonsense", b"vendor=1")
    assert ctx.parent_span_id is None and ctx.tracestate is None and ctx.trace_sampled is None
    assert len(ctx.trace_id) == 32 and int(ctx.trace_id, 16) != 0
    assert ctx.trace_id == ctx.trace_id  # made once
    assert RequestContext("req_2").trace_id != ctx.trace_id


def test_a_valid_traceparent_and_tracestate_go_on_the_context() -> None:
    ctx = RequestContext("req_1")
    assert accept(ctx, VALID, b"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
    assert (ctx.trace_id, ctx.parent_span_id, ctx.trace_sampled) == (TRACE, PARENT, True)
    assert ctx.tracestate == b"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    other = RequestContext("req_2")
    assert accept(other, VALID, b"bad\x01state")
    assert other.tracestate is None  # a tracestate with control characters is dropped
    assert accept(other, VALID, b"x" * 513) and other.tracestate is None  # too long


def test_without_tracing_the_callers_context_passes_through_unchanged() -> None:
    ctx = RequestContext("req_1")
    accept(ctx, VALID, b"rojo=1")
    attempt = Attempt("openai", "gpt-4o")
    lines = upstream_lines(ctx, attempt, None)
    assert lines == f"traceparent: 00-{TRACE}-{PARENT}-01\r\ntracestate: rojo=1\r\n".encode()
    assert attempt.span_id is None


def test_with_tracing_each_attempt_sends_its_own_span_id() -> None:
    ctx = RequestContext("req_1")
    accept(ctx, VALID, None)
    first, second = Attempt("a", "m"), Attempt("b", "m")
    always = ratio_sampler(1.0)
    one, two = upstream_lines(ctx, first, always), upstream_lines(ctx, second, always)
    assert first.span_id and second.span_id and first.span_id != second.span_id
    assert one == f"traceparent: 00-{TRACE}-{first.span_id}-01\r\n".encode()
    assert two == f"traceparent: 00-{TRACE}-{second.span_id}-01\r\n".encode()


def test_a_new_trace_is_sampled_as_opentelemetrys_ratio_sampler_decides() -> None:
    for ratio in (0.0, 0.1, 0.5, 1.0):
        ours, theirs = ratio_sampler(ratio), TraceIdRatioBased(ratio)
        for _ in range(300):
            trace_id = RequestContext("r").trace_id
            decision = theirs.should_sample(None, int(trace_id, 16), "x").decision
            assert ours(trace_id) == (decision == Decision.RECORD_AND_SAMPLE)
    ctx = RequestContext("req_1")
    accept(ctx, f"00-{TRACE}-{PARENT}-00".encode(), None)
    lines = upstream_lines(ctx, Attempt("a", "m"), ratio_sampler(1.0))
    assert lines.endswith(b"-00\r\n")  # the caller's decision (not sampled) holds

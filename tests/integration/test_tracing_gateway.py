"""Traces over real sockets: ``traceparent`` from the caller, to the upstream, and the spans
a real OTLP/HTTP receiver decodes (an in-thread gateway, fake OpenAI upstreams)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gatewise.testing import FakeOpenAIUpstream, run_in_thread
from gatewise.testing.otlp_receiver import OTLPReceiver, ReceivedSpan
from gatewise.testing.scenario import Scenario
from tests.conftest import UPSTREAM_KEY, openai_provider
from tests.e2e.routing_support import StartGateway
from tests.rawhttp import request

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
CALLER = f"00-{TRACE}-{PARENT}-01"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello traces"}]}
SERVER, CLIENT = 2, 3  # OTLP span kinds


@pytest.fixture(scope="module")
def receiver() -> Iterator[OTLPReceiver]:
    with run_in_thread(OTLPReceiver()) as started:
        yield started


@pytest.fixture(scope="module")
def second_fake() -> Iterator[FakeOpenAIUpstream]:
    with run_in_thread(FakeOpenAIUpstream(api_key=UPSTREAM_KEY)) as fake:
        yield fake


def config(first: str, second: str, tracing: dict[str, Any] | None = None) -> dict[str, Any]:
    """gpt-4o served by ``first``, failing over to ``second``."""
    deployments = [{"provider": "a", "model": "gpt-4o-mini"}, {"provider": "b", "model": "gpt-4o"}]
    result: dict[str, Any] = {
        "auth": {"mode": "open"},
        "providers": {"a": openai_provider(first), "b": openai_provider(second)},
        "models": [{"name": "gpt-4o", "deployments": deployments}],
    }
    if tracing is not None:
        result["observability"] = {"tracing": tracing}
    return result


def test_without_tracing_the_callers_traceparent_reaches_the_upstream_as_it_came(
    start_gateway: StartGateway, upstream: FakeOpenAIUpstream, second_fake: FakeOpenAIUpstream
) -> None:
    gateway = start_gateway(config(upstream.url, second_fake.url))
    url = gateway.url + "/v1/chat/completions"
    headers = {"traceparent": CALLER, "tracestate": "rojo=00f067aa0ba902b7"}
    assert request("POST", url, BODY, headers).status == 200
    received = upstream.last_request
    assert received is not None
    assert received.headers["traceparent"] == CALLER
    assert received.headers["tracestate"] == "rojo=00f067aa0ba902b7"
    assert request("POST", url, BODY).status == 200  # no caller context: none sent
    assert "traceparent" not in upstream.requests[-1].headers
    bad = {"traceparent": f"00-{TRACE.upper()}-{PARENT}-01", "tracestate": "a=b"}
    assert request("POST", url, BODY, bad).status == 200  # malformed: ignored, not forwarded
    last = upstream.requests[-1].headers
    assert "traceparent" not in last and "tracestate" not in last


def test_traced_failover_exports_the_span_tree_upstreams_were_told_about(
    start_gateway: StartGateway,
    upstream: FakeOpenAIUpstream,
    second_fake: FakeOpenAIUpstream,
    receiver: OTLPReceiver,
) -> None:
    second_fake.reset()
    tracing = {"enabled": True, "endpoint": receiver.endpoint, "service_name": "gw-int"}
    gateway = start_gateway(config(upstream.url, second_fake.url, tracing))
    upstream.script(Scenario(status=503))
    reply = request("POST", gateway.url + "/v1/chat/completions", BODY, {"traceparent": CALLER})
    assert reply.status == 200
    failed, answered = upstream.last_request, second_fake.last_request
    assert failed is not None and answered is not None
    sent = [failed.headers["traceparent"], answered.headers["traceparent"]]
    ids = [value.split("-")[2] for value in sent]
    assert all(value.startswith(f"00-{TRACE}-") and value.endswith("-01") for value in sent)
    assert len(set(ids)) == 2 and PARENT not in ids  # one client span id per attempt
    before = len(receiver.spans)
    spans = [s for s in receiver.wait_for(before + 3)[before:] if s.trace_id == TRACE]
    server = one(spans, SERVER)
    clients = sorted((s for s in spans if s.kind == CLIENT), key=lambda s: s.start_ns)
    assert server.name == "chat gpt-4o" and server.parent_span_id == PARENT
    assert server.resource["service.name"] == "gw-int"
    assert server.schema_url.endswith("/1.37.0")
    assert [c.span_id for c in clients] == ids
    assert all(c.parent_span_id == server.span_id for c in clients)
    assert [c.name for c in clients] == ["chat gpt-4o-mini", "chat gpt-4o"]
    assert clients[0].attributes["error.type"] and clients[0].status_code == 2
    assert clients[0].attributes["http.response.status_code"] == 503
    assert clients[1].attributes["gen_ai.provider.name"] == "openai"
    assert clients[1].attributes["gen_ai.usage.input_tokens"] > 0
    assert clients[1].attributes["gen_ai.usage.output_tokens"] > 0
    assert clients[1].attributes["gen_ai.response.model"] == "gpt-4o"
    assert clients[1].attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert server.attributes["gen_ai.request.model"] == "gpt-4o"
    assert server.attributes["http.response.status_code"] == 200
    assert server.start_ns <= clients[0].start_ns < clients[1].end_ns <= server.end_ns
    assert UPSTREAM_KEY.encode() not in receiver.raw()


def test_a_request_without_traceparent_starts_a_trace_the_upstream_joins(
    start_gateway: StartGateway,
    upstream: FakeOpenAIUpstream,
    second_fake: FakeOpenAIUpstream,
    receiver: OTLPReceiver,
) -> None:
    tracing = {"enabled": True, "endpoint": receiver.endpoint}
    gateway = start_gateway(config(upstream.url, second_fake.url, tracing))
    bad = {"traceparent": "00-zz-" + PARENT + "-01"}  # malformed: a new trace begins
    body = {**BODY, "stream": True}
    reply = request("POST", gateway.url + "/v1/chat/completions", body, bad)
    assert reply.status == 200 and b"data: [DONE]" in reply.body
    received = upstream.last_request
    assert received is not None
    _version, trace_id, span_id, flags = received.headers["traceparent"].split("-")
    assert trace_id != TRACE and flags == "01"
    spans = [s for s in receiver.wait_for(1) if s.trace_id == trace_id]
    while len(spans) < 2:
        spans = [s for s in receiver.wait_for(len(receiver.spans) + 1) if s.trace_id == trace_id]
    server, client = one(spans, SERVER), one(spans, CLIENT)
    assert server.parent_span_id == "" and client.span_id == span_id
    assert client.parent_span_id == server.span_id
    assert server.attributes["gatewise.stream"] is True
    assert server.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert client.attributes["gen_ai.response.model"] == "gpt-4o-mini"


def one(spans: list[ReceivedSpan], kind: int) -> ReceivedSpan:
    (found,) = [s for s in spans if s.kind == kind]
    return found

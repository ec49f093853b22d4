"""Failover end to end: a real gateway on loopback in front of several fake upstreams
(one per deployment), each counting what it received.

Covered: ordered failover and the routing headers (and turning them off), a
non-retryable answer ending the walk, fallbacks to another model on another provider
(plain and streamed, through the openai SDK; also when the model's deployments are all
open or cooling down), context-window and content-policy fallbacks, streams that fail
before or after their first chunk, and per-deployment / per-model timeouts.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from gatewise.testing import Scenario
from tests.e2e.routing_support import (
    CLAUDE,
    HELLO,
    MODEL,
    ROUTING_HEADERS,
    StartGateway,
    Upstreams,
    chat,
    config,
    deployment,
    served_by,
    sse_data,
    streamed_text,
)


def three_deployments(fakes: Upstreams, **sections: Any) -> dict[str, Any]:
    """Model ``m``: a, then b (named ``b-main``), then c."""
    plan = [deployment("a"), deployment("b", name="b-main"), deployment("c")]
    return config(fakes, {"m": plan}, **sections)


def test_a_503_fails_over_to_the_next_deployment_in_order(
    fakes: Upstreams, start_gateway: StartGateway
) -> None:
    gateway = start_gateway(three_deployments(fakes))
    fakes.a.script(Scenario(status=503))
    reply = chat(gateway, "m")
    assert reply.status == 200, reply.body
    assert "Hello router" in reply.json["choices"][0]["message"]["content"]
    assert fakes.counts() == (1, 1, 0)
    assert reply.headers["x-gatewise-deployment"] == "b-main"  # the configured name
    assert reply.headers["x-gatewise-provider"] == "b"
    assert reply.headers["x-gatewise-attempts"] == "2"
    # A healthy first deployment serves alone; its id defaults to provider/model.
    reply = chat(gateway, "m")
    assert reply.status == 200
    assert fakes.counts() == (2, 1, 0)
    assert reply.headers["x-gatewise-deployment"] == f"a/{MODEL}"
    assert reply.headers["x-gatewise-attempts"] == "1"


def test_routing_headers_can_be_turned_off(fakes: Upstreams, start_gateway: StartGateway) -> None:
    gateway = start_gateway(three_deployments(fakes, routing={"headers": False}))
    fakes.a.script(Scenario(status=503))
    reply = chat(gateway, "m")
    assert reply.status == 200, reply.body
    assert fakes.counts() == (1, 1, 0)  # the failover itself still happens
    assert "x-request-id" in reply.headers
    assert not [name for name in ROUTING_HEADERS if name in reply.headers]


@pytest.mark.parametrize("status", [400, 404, 422])
def test_a_non_retryable_error_is_the_answer(
    fakes: Upstreams, start_gateway: StartGateway, status: int
) -> None:
    gateway = start_gateway(three_deployments(fakes))
    fakes.a.script(Scenario(status=status, error_message="nope: bad parameter"))
    reply = chat(gateway, "m")
    assert reply.status == status, reply.body
    assert reply.json["error"]["message"] == "nope: bad parameter"
    assert fakes.counts() == (1, 0, 0)
    assert served_by(reply) is None


@pytest.mark.parametrize("status", [401, 403])
def test_an_upstream_refusing_the_deployments_credentials_fails_over(
    fakes: Upstreams, start_gateway: StartGateway, status: int
) -> None:
    """The gateway's key for that upstream is wrong or barred: the caller can do nothing
    about it, the next deployment can serve."""
    gateway = start_gateway(three_deployments(fakes))
    fakes.a.script(Scenario(status=status, error_message="invalid api key"))
    reply = chat(gateway, "m")
    assert reply.status == 200, reply.body
    assert fakes.counts() == (1, 1, 0)
    assert reply.headers["x-gatewise-attempts"] == "2"


def test_fallback_to_a_model_on_another_provider(
    fakes: Upstreams, start_gateway: StartGateway
) -> None:
    gateway = start_gateway(
        config(
            fakes,
            {"gpt": [deployment("a")], "claude": [deployment("ant", CLAUDE)]},
            model_routing={"gpt": {"fallbacks": ["claude"]}},
        )
    )
    fakes.a.script(Scenario(status=503, times=100))
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="client", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="gpt", messages=HELLO)  # type: ignore[arg-type]
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert "Hello router" in (completion.choices[0].message.content or "")
    assert completion.choices[0].finish_reason == "stop"
    assert raw.headers["x-gatewise-deployment"] == f"ant/{CLAUDE}"
    assert raw.headers["x-gatewise-provider"] == "ant"
    assert raw.headers["x-gatewise-attempts"] == "2"
    assert len(fakes.a.requests) == 1
    assert [r.path for r in fakes.ant.requests] == ["/v1/messages"]
    assert fakes.ant.requests[0].json["model"] == CLAUDE

    # Streamed: the fallback happens before the first byte reaches the client.
    raw_stream = client.chat.completions.with_raw_response.create(
        model="gpt",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
    )
    assert raw_stream.headers["x-gatewise-deployment"] == f"ant/{CLAUDE}"
    chunks = list(cast(openai.Stream[ChatCompletionChunk], raw_stream.parse()))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Hello router" in text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert len(fakes.a.requests) == 2
    assert len(fakes.ant.requests) == 2 and fakes.ant.requests[1].json["stream"] is True


@pytest.mark.parametrize(
    "unavailable",
    [
        pytest.param({"breaker": {"failures": 1}}, id="circuit-open"),
        pytest.param({"cooldown_on_429_s": 30}, id="cooling-after-429"),
    ],
)
def test_a_model_with_every_deployment_unavailable_goes_to_its_fallbacks(
    fakes: Upstreams, start_gateway: StartGateway, unavailable: dict[str, Any]
) -> None:
    gateway = start_gateway(
        config(
            fakes,
            {"gpt": [deployment("a")], "claude": [deployment("ant", CLAUDE)]},
            model_routing={"gpt": {"fallbacks": ["claude"]}},
            routing=unavailable,
        )
    )
    fakes.a.script(Scenario(status=503) if "breaker" in unavailable else Scenario(status=429))
    reply = chat(gateway, "gpt")
    assert served_by(reply) == f"ant/{CLAUDE}"  # a failed: its circuit opened / it cools down
    reply = chat(gateway, "gpt")
    assert len(fakes.a.requests) == 1  # a is unavailable: not tried again
    assert reply.status == 200, reply.body
    assert served_by(reply) == f"ant/{CLAUDE}"
    assert len(fakes.ant.requests) == 2


def test_model_fallbacks_by_kind_of_failure(fakes: Upstreams, start_gateway: StartGateway) -> None:
    routing = {
        "context_window_fallbacks": ["big"],
        "content_policy_fallbacks": ["lenient"],
    }
    models = {
        "small": [deployment("a")],
        "big": [deployment("b", "gpt-4.1")],
        "lenient": [deployment("c", "gpt-4o")],
    }
    gateway = start_gateway(config(fakes, models, model_routing={"small": routing}))
    fakes.a.script(
        Scenario(
            status=400,
            error_code="context_length_exceeded",
            error_message="This model's maximum context length is 128000 tokens.",
        )
    )
    reply = chat(gateway, "small")
    assert reply.status == 200, reply.body
    assert served_by(reply) == "b/gpt-4.1"
    assert fakes.counts() == (1, 1, 0)
    assert fakes.b.requests[0].json["model"] == "gpt-4.1"

    fakes.a.script(Scenario(status=400, error_code="content_policy_violation"))
    reply = chat(gateway, "small")
    assert reply.status == 200, reply.body
    assert served_by(reply) == "c/gpt-4o"
    assert fakes.counts() == (2, 1, 1)

    fakes.a.script(Scenario(status=400, error_code="invalid_value", error_message="Bad 'n'."))
    reply = chat(gateway, "small")
    assert reply.status == 400
    assert reply.json["error"]["code"] == "invalid_value"
    assert fakes.counts() == (3, 1, 1)  # no fallback for an ordinary 400

    # An outage is neither: these lists do not serve it (no plain `fallbacks` here).
    fakes.a.script(Scenario(status=503))
    assert chat(gateway, "small").status == 503
    assert fakes.counts() == (4, 1, 1)


@pytest.mark.parametrize(
    "broken",
    [Scenario(reset_after=0), Scenario(garbage_stream=True), Scenario(status=502)],
    ids=["reset-before-first-chunk", "garbage-stream", "502"],
)
def test_a_stream_failing_before_its_first_chunk_fails_over(
    fakes: Upstreams, start_gateway: StartGateway, broken: Scenario
) -> None:
    gateway = start_gateway(three_deployments(fakes))
    fakes.a.script(broken)
    reply = chat(gateway, "m", stream=True)
    assert reply.status == 200, reply.body
    assert served_by(reply) == "b-main"
    assert reply.headers["x-gatewise-attempts"] == "2"
    payloads = sse_data(reply.body)
    assert payloads[-1] == "[DONE]"
    assert not [p for p in payloads if '"error"' in p]
    assert "Hello router" in streamed_text(payloads)
    assert fakes.counts() == (1, 1, 0)


def test_a_stream_failing_after_chunks_reached_the_client_is_not_retried(
    fakes: Upstreams, start_gateway: StartGateway
) -> None:
    gateway = start_gateway(three_deployments(fakes))
    fakes.a.script(Scenario(reset_after=3, chunk_delay=0.05))
    reply = chat(gateway, "m", stream=True)
    assert reply.status == 200
    assert served_by(reply) == f"a/{MODEL}"
    payloads = sse_data(reply.body)
    assert payloads, reply.body
    assert payloads[-1] != "[DONE]"
    assert "error" in json.loads(payloads[-1])  # the stream ends with an error event
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert fakes.counts() == (1, 0, 0)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_deployment_timeout_fails_over_long_before_the_upstream_answers(
    fakes: Upstreams, start_gateway: StartGateway, stream: bool
) -> None:
    plan = [deployment("a", timeout=0.3), deployment("b", timeout=0.3)]
    gateway = start_gateway(config(fakes, {"m": plan}))
    fakes.a.script(Scenario(slow_first_byte=2))
    started = time.monotonic()
    reply = chat(gateway, "m", stream=stream)
    elapsed = time.monotonic() - started
    assert reply.status == 200, reply.body
    if stream:
        assert sse_data(reply.body)[-1] == "[DONE]"
    assert served_by(reply) == f"b/{MODEL}"
    assert fakes.counts() == (1, 1, 0)
    assert 0.3 <= elapsed < 1.0

    # Every deployment too slow: a timeout error after 0.3 s per attempt.
    fakes.a.script(Scenario(slow_first_byte=2))
    fakes.b.script(Scenario(slow_first_byte=2))
    started = time.monotonic()
    reply = chat(gateway, "m", stream=stream)
    elapsed = time.monotonic() - started
    assert reply.status == 504, reply.body
    assert fakes.counts() == (2, 2, 0)
    assert 0.6 <= elapsed < 1.3


def test_a_deployment_timeout_wins_over_the_model_timeout(
    fakes: Upstreams, start_gateway: StartGateway
) -> None:
    plan = [deployment("a"), deployment("b", timeout=3)]
    gateway = start_gateway(config(fakes, {"m": plan}, model_routing={"m": {"timeout": 0.3}}))
    fakes.a.script(Scenario(slow_first_byte=2))
    fakes.b.script(Scenario(slow_first_byte=0.6))  # over the model's 0.3 s, under b's 3 s
    started = time.monotonic()
    reply = chat(gateway, "m")
    elapsed = time.monotonic() - started
    assert reply.status == 200, reply.body
    assert served_by(reply) == f"b/{MODEL}"
    assert fakes.counts() == (1, 1, 0)
    assert 0.9 <= elapsed < 1.6

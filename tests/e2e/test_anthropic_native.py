"""Anthropic clients in front of an Anthropic upstream: everything passes through.

The official anthropic SDK -> a real gateway -> ``FakeAnthropicUpstream``, which
checks thinking like the real API (a tool loop with thinking on must send the
thinking blocks back, with the signatures the fake issued). The client asks
for ``claude``; the deployment is ``claude-haiku-4-5``: the model name is the
only thing the upstream sees differently. Replies are compared byte for byte
with what the fake sends for the recorded request (its reply is deterministic).

The second half runs the same loops through a gateway whose corridor has a step
that may rewrite requests and change output: the client's body and the
upstream's bytes may then not pass as they are, and the translated path must
still carry thinking (with signatures) and ``stop_sequence``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from gatewise.core.types import ChatChunk
from gatewise.corridor.call import Call
from gatewise.corridor.step import Reply, Step
from gatewise.runtime import generation
from gatewise.testing import FakeAnthropicUpstream, Scenario, run_in_thread
from gatewise.testing import anthropic_wire as fake_wire
from gatewise.testing.anthropic_reply import (
    REDACTED_DATA,
    PromptCache,
    compose_message,
    thinking_signature,
)
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from tests.conftest import UPSTREAM_KEY
from tests.rawhttp import post, request

MODEL, UPSTREAM_MODEL = "claude", "claude-haiku-4-5"
THINKING: dict[str, Any] = {"type": "enabled", "budget_tokens": 1024}
HEADERS = {"x-api-key": "client-key", "anthropic-version": "2023-06-01"}
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
QUESTION: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
CHUNKS = 4  # text deltas per streamed message


def gateway_config(url: str) -> dict[str, Any]:
    return {
        "auth": {"mode": "open"},
        "providers": {
            "claude": {"type": "anthropic", "base_url": url, "api_key": "${env:GW_TEST_ANT_KEY}"}
        },
        "models": [
            {"name": MODEL, "deployments": [{"provider": "claude", "model": UPSTREAM_MODEL}]}
        ],
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropicUpstream]:
    with run_in_thread(FakeAnthropicUpstream(api_key=UPSTREAM_KEY, stream_chunks=CHUNKS)) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(fake: FakeAnthropicUpstream) -> Iterator[RunningGateway]:
    patch = pytest.MonkeyPatch()
    patch.setenv("GW_TEST_ANT_KEY", UPSTREAM_KEY)
    with run_gateway_in_thread(gateway_config(fake.url)) as running:
        yield running
    patch.undo()


class Inspecting(Step):
    """A step that may rewrite requests and change output (it does neither): its corridor
    neither sends clients' bodies on nor relays upstreams' bytes."""

    name = "inspecting"

    async def rewrite_request(self, call: Call) -> None:
        return None

    async def after(self, call: Call, reply: Reply) -> Reply:
        return reply

    async def on_chunks(self, call: Call, chunks: list[ChatChunk]) -> list[ChatChunk]:
        return chunks


@pytest.fixture(scope="module")
def translating_gateway(fake: FakeAnthropicUpstream) -> Iterator[RunningGateway]:
    patch = pytest.MonkeyPatch()
    patch.setenv("GW_TEST_ANT_KEY", UPSTREAM_KEY)
    steps = generation.corridor_steps
    with contextlib.ExitStack() as stack:
        # Patched only while this gateway builds its generation: the other module-scoped
        # gateway may be built after this one (random test order) and must stay raw.
        with pytest.MonkeyPatch.context() as building:
            building.setattr(
                generation, "corridor_steps", lambda *args: [*steps(*args), Inspecting()]
            )
            running = stack.enter_context(run_gateway_in_thread(gateway_config(fake.url)))
        assert not running.app.generation.corridor.relay_raw
        assert not running.app.generation.corridor.native_requests
        yield running
    patch.undo()


@pytest.fixture
def upstream(fake: FakeAnthropicUpstream) -> FakeAnthropicUpstream:
    fake.reset()
    return fake


def sdk(gateway: RunningGateway, suffix: str = "") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url + suffix, api_key="client-key", max_retries=0)


# --- what the fake sent, reproduced from the request it recorded ------------------------


def fake_body(sent: dict[str, Any], received: dict[str, Any], scenario: Scenario) -> bytes:
    """The fake's non-streamed body for ``sent`` (ids taken from what the client got)."""
    reply = compose_message(
        sent,
        PromptCache(),  # the fake's cache was reset: first sight of every prefix
        redacted_thinking=scenario.redacted_thinking,
        citations=scenario.citations,
    )
    tool_ids = [b["id"] for b in received["content"] if b["type"] == "tool_use"]
    return fake_wire.message_body(received["id"], sent["model"], reply, tool_ids)


def events_of(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.decode().split("\n\n"):
        if block:
            name, data = block.split("\n", 1)
            events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def fake_events(sent: dict[str, Any], received: bytes, scenario: Scenario) -> bytes:
    """The fake's SSE events for ``sent`` (ids taken from what the client got)."""
    reply = compose_message(
        sent,
        PromptCache(),
        redacted_thinking=scenario.redacted_thinking,
        citations=scenario.citations,
    )
    events = events_of(received)
    message_id = events[0][1]["message"]["id"]
    tool_ids = [
        data["content_block"]["id"]
        for name, data in events
        if name == "content_block_start" and data["content_block"]["type"] == "tool_use"
    ]
    chunks = fake_wire.stream_events(message_id, sent["model"], reply, tool_ids, CHUNKS)
    return b"".join(chunks)


# --- replies: the upstream's own bytes ------------------------------------------------------

SECRET: list[Any] = [{"role": "user", "content": "Tell me the secret word STOP and more"}]


def test_plain_reply_is_the_upstreams_own_body(
    gateway: RunningGateway, upstream: FakeAnthropicUpstream
) -> None:
    scenario = Scenario(redacted_thinking=True, citations=True)
    upstream.script(scenario)
    raw = sdk(gateway).messages.with_raw_response.create(
        model=MODEL, max_tokens=2000, messages=SECRET, thinking=THINKING, stop_sequences=["STOP"]
    )
    body = raw.http_response.content
    sent = upstream.requests[-1].json
    assert body == fake_body(sent, json.loads(body), scenario)
    message = raw.parse()
    assert raw.headers["request-id"] == raw.headers["x-request-id"]  # the gateway's own
    assert message.model == UPSTREAM_MODEL and message.id.startswith("msg_01")
    assert [block.type for block in message.content] == ["thinking", "redacted_thinking", "text"]
    thinking, redacted, text = message.content
    assert thinking.type == "thinking" and thinking.signature == thinking_signature(
        thinking.thinking
    )
    assert redacted.type == "redacted_thinking" and redacted.data == REDACTED_DATA
    assert text.type == "text" and text.text == "Echo: Tell me the secret word "
    assert text.citations and text.citations[0].cited_text == text.text
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "STOP")


def test_streamed_reply_is_the_upstreams_own_events(
    gateway: RunningGateway, upstream: FakeAnthropicUpstream
) -> None:
    scenario = Scenario(redacted_thinking=True, citations=True)
    upstream.script(scenario)
    body = {
        "model": MODEL,
        "max_tokens": 2000,
        "stream": True,
        "thinking": THINKING,
        "stop_sequences": ["STOP"],
        "messages": SECRET,
    }
    reply = post(gateway.url + "/v1/messages", body, headers=HEADERS)
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/event-stream")
    assert reply.body == fake_events(upstream.requests[-1].json, reply.body, scenario)
    names = [name for name, _ in events_of(reply.body)]
    assert names.count("message_start") == 1 and names[-1] == "message_stop"
    events = events_of(reply.body)
    deltas = [data["delta"]["type"] for name, data in events if name == "content_block_delta"]
    assert {"thinking_delta", "signature_delta", "citations_delta", "text_delta"} <= set(deltas)

    upstream.script(scenario)
    with sdk(gateway).messages.stream(
        model=MODEL, max_tokens=2000, messages=SECRET, thinking=THINKING, stop_sequences=["STOP"]
    ) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "redacted_thinking", "text"]
    thinking, redacted, text = final.content
    assert thinking.type == "thinking" and thinking.signature == thinking_signature(
        thinking.thinking
    )
    assert redacted.type == "redacted_thinking" and redacted.data == REDACTED_DATA
    assert text.type == "text" and text.citations and text.citations[0].cited_text == text.text
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "STOP")
    assert final.model == UPSTREAM_MODEL


def test_mid_stream_error_comes_after_the_upstreams_events(
    gateway: RunningGateway, upstream: FakeAnthropicUpstream
) -> None:
    upstream.script(Scenario(error_event_after=4))
    body = {"model": MODEL, "max_tokens": 50, "stream": True, "messages": QUESTION}
    reply = post(gateway.url + "/v1/messages", body, headers=HEADERS)
    events = events_of(reply.body)
    assert [name for name, _ in events][:4] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
    ]
    assert len(events) == 5 and events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "overloaded_error"
    assert events[-1][1]["request_id"] == reply.headers["request-id"]  # the gateway's event


# --- requests: the client's own body ------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_request_reaches_the_upstream_as_sent(
    gateway: RunningGateway, upstream: FakeAnthropicUpstream, stream: bool
) -> None:
    ephemeral = {"type": "ephemeral", "ttl": "1h"}
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "system": [{"type": "text", "text": "Shared rules.", "cache_control": ephemeral}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "Facts."},
                        "title": "Facts",
                        "citations": {"enabled": True},
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": "What do the facts say?"},
                ],
            }
        ],
        "tools": [{**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "none"},
        "top_k": 7,
        "service_tier": "standard_only",  # fields the gateway does not model
        "inference_geo": "eu",
        "metadata": {"user_id": "u-1"},
    }
    if stream:
        body["stream"] = True
    reply = post(gateway.url + "/v1/messages", body, headers=HEADERS)
    assert reply.status == 200, reply.body
    assert upstream.requests[-1].json == {**body, "model": UPSTREAM_MODEL}


# --- thinking and tool use in a loop -----------------------------------------------------


def first_turn(client: anthropic.Anthropic, stream: bool) -> list[dict[str, Any]]:
    """The assistant content of a thinking + tool_use answer, as the client received it."""
    fields: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 2000,
        "thinking": THINKING,
        "tools": [WEATHER_TOOL],
        "messages": QUESTION,
    }
    if stream:
        with client.messages.stream(**fields) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**fields)
    assert message.stop_reason == "tool_use"
    return [block.model_dump(exclude_none=True) for block in message.content]


def second_turn(
    client: anthropic.Anthropic, content: list[dict[str, Any]], stream: bool
) -> anthropic.types.Message:
    tool_use = next(block for block in content if block["type"] == "tool_use")
    fields: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 2000,
        "thinking": THINKING,
        "tools": [WEATHER_TOOL],
        "messages": [
            *QUESTION,
            {"role": "assistant", "content": content},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use["id"], "content": "18C"}
                ],
            },
        ],
    }
    if stream:
        with client.messages.stream(**fields) as events:
            return events.get_final_message()
    return client.messages.create(**fields)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_thinking_tool_loop(
    gateway: RunningGateway, upstream: FakeAnthropicUpstream, stream: bool
) -> None:
    client = sdk(gateway)
    upstream.script(Scenario(redacted_thinking=True))
    content = first_turn(client, stream)
    assert [block["type"] for block in content] == ["thinking", "redacted_thinking", "tool_use"]
    assert content[0]["signature"] == thinking_signature(content[0]["thinking"])
    answer = second_turn(client, content, stream)
    assert [block.type for block in answer.content] == ["thinking", "text"]
    assert answer.content[1].type == "text" and answer.content[1].text == "Tool result: 18C"
    assert upstream.requests[-1].json["messages"][1]["content"] == content  # as the client sent

    # The upstream is strict, like the real API: without the thinking blocks, or with a
    # signature it did not issue, the loop is refused (and the refusal relayed).
    with pytest.raises(anthropic.BadRequestError) as missing:
        second_turn(client, content[2:], stream)
    assert "Expected `thinking` or `redacted_thinking`, but found `tool_use`" in str(
        missing.value.message
    )
    forged = [{**content[0], "signature": "forged"}, *content[1:]]
    with pytest.raises(anthropic.BadRequestError) as invalid:
        second_turn(client, forged, stream)
    assert "Invalid `signature` in `thinking` block" in str(invalid.value.message)


# --- when the corridor may change requests and output: the translated path ---------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_translated_path_keeps_thinking_and_stop_sequence(
    translating_gateway: RunningGateway, upstream: FakeAnthropicUpstream, stream: bool
) -> None:
    client = sdk(translating_gateway)
    upstream.script(Scenario(redacted_thinking=True))
    content = first_turn(client, stream)
    assert [block["type"] for block in content] == ["thinking", "redacted_thinking", "tool_use"]
    assert content[0]["signature"] == thinking_signature(content[0]["thinking"])
    assert content[1]["data"] == REDACTED_DATA
    answer = second_turn(client, content, stream)
    assert answer.content[-1].type == "text" and answer.content[-1].text == "Tool result: 18C"
    sent = upstream.requests[-1].json["messages"][1]["content"]
    assert sent[:2] == content[:2]  # the thinking blocks, rebuilt from the canonical request
    assert answer.id.startswith("msg_") and answer.model == MODEL  # the gateway's encoding

    fields: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 50,
        "messages": SECRET,
        "stop_sequences": ["STOP"],
    }
    if stream:
        with client.messages.stream(**fields) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**fields)
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "STOP")


# --- base URLs ------------------------------------------------------------------------------


def test_base_url_with_v1(gateway: RunningGateway, upstream: FakeAnthropicUpstream) -> None:
    client = sdk(gateway, "/v1")  # the SDK then calls /v1/v1/messages
    message = client.messages.create(model=MODEL, max_tokens=20, messages=QUESTION)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: Weather in Paris?"
    with client.messages.stream(model=MODEL, max_tokens=20, messages=QUESTION) as stream:
        assert "".join(stream.text_stream) == "Echo: Weather in Paris?"
    assert client.messages.count_tokens(model=MODEL, messages=QUESTION).input_tokens > 0
    assert [r.path for r in upstream.requests] == [
        "/v1/messages",
        "/v1/messages",
        "/v1/messages/count_tokens",
    ]


@pytest.mark.parametrize("prefix", ["", "/v1/v1"])
def test_messages_paths_for_clients_that_append_messages(
    gateway: RunningGateway, upstream: FakeAnthropicUpstream, prefix: str
) -> None:
    body = {"model": MODEL, "max_tokens": 20, "messages": QUESTION}
    reply = post(gateway.url + prefix + "/messages", body, headers=HEADERS)
    assert reply.status == 200
    assert reply.json["content"][0]["text"] == "Echo: Weather in Paris?"
    count_body = {"model": MODEL, "messages": QUESTION}  # count_tokens refuses max_tokens
    counted = post(gateway.url + prefix + "/messages/count_tokens", count_body, headers=HEADERS)
    assert counted.status == 200 and counted.json["input_tokens"] > 0


# --- count_tokens ---------------------------------------------------------------------------


def test_count_tokens_is_anthropics_own_count(
    gateway: RunningGateway, upstream: FakeAnthropicUpstream
) -> None:
    from gatewise.testing.anthropic_reply import count_input_tokens

    body = {
        "model": MODEL,
        "system": "Be brief and precise in every answer you give.",
        "messages": QUESTION,
        "tools": [WEATHER_TOOL],
    }
    counted = post(gateway.url + "/v1/messages/count_tokens", body, headers=HEADERS)
    assert counted.status == 200 and "x-gatewise-estimated" not in counted.headers
    [sent] = upstream.requests
    assert sent.path == "/v1/messages/count_tokens"
    assert json.loads(sent.body) == {**body, "model": UPSTREAM_MODEL}
    assert counted.json == {"input_tokens": count_input_tokens({**body, "model": UPSTREAM_MODEL})}


def test_count_tokens_falls_back_to_an_estimate_only_when_the_upstream_cannot_answer(
    gateway: RunningGateway, upstream: FakeAnthropicUpstream
) -> None:
    body = {"model": MODEL, "messages": QUESTION}
    upstream.script(Scenario(status=529))
    counted = post(gateway.url + "/v1/messages/count_tokens", body, headers=HEADERS)
    assert counted.status == 200 and counted.headers["x-gatewise-estimated"] == "true"
    assert counted.json["input_tokens"] > 0
    upstream.script(Scenario(status=400, error_message="messages: bad"))
    refused = post(gateway.url + "/v1/messages/count_tokens", body, headers=HEADERS)
    assert refused.status == 400 and refused.json["error"]["message"] == "messages: bad"


def test_unknown_paths_answer_in_the_clients_format(gateway: RunningGateway) -> None:
    for method in ("GET", "POST"):
        as_anthropic = request(method, gateway.url + "/v1/nope", {}, headers=HEADERS)
        assert as_anthropic.status == 404
        assert as_anthropic.json["type"] == "error"
        assert as_anthropic.json["error"]["type"] == "not_found_error"
        assert as_anthropic.json["request_id"] == as_anthropic.headers["request-id"]
        as_openai = request(method, gateway.url + "/v1/nope", {})
        assert as_openai.status == 404
        assert set(as_openai.json) == {"error"}
        assert set(as_openai.json["error"]) == {"message", "type", "param", "code"}

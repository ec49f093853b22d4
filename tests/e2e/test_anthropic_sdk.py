"""The official anthropic SDK against the gateway's /v1/messages front door.

The session gateway serves ``gpt-4o-mini`` from the OpenAI fake upstream and
``mock-gpt`` from the built-in mock provider; the Anthropic clients never see
that neither is an Anthropic model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from gatewise.core import tokens
from gatewise.testing import FakeOpenAIUpstream, run_in_thread
from gatewise.testing.anthropic_upstream import FakeAnthropicUpstream
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from gatewise.testing.scenario import Scenario
from tests.conftest import UPSTREAM_KEY
from tests.rawhttp import post

MODEL = "gpt-4o-mini"
HELLO: list[Any] = [{"role": "user", "content": "Hello gateway"}]
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module", autouse=True)
def _tokenizers_loaded() -> None:
    """Load the encoders up front: stream usage estimates are then exact, not heuristic."""
    tokens.preload(MODEL)
    tokens.preload("mock-gpt")


@pytest.fixture
def client(gateway: RunningGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="client-key", max_retries=0)


def test_create(client: anthropic.Anthropic, upstream: FakeOpenAIUpstream) -> None:
    raw = client.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=100,
        system="Answer briefly.",
        messages=HELLO,
        stop_sequences=["STOP"],
        metadata={"user_id": "user-42"},
        extra_body={"temperature": 0.3},  # the 2.x SDK no longer lists sampling parameters
    )
    message = raw.parse()
    assert raw.headers["request-id"] == raw.headers["x-request-id"]
    assert message.id == "msg_" + raw.headers["request-id"].removeprefix("req_")
    assert message.type == "message" and message.role == "assistant"
    assert message.model == MODEL
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: Hello gateway"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 3
    forwarded = upstream.requests[-1].json
    assert forwarded["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Hello gateway"},
    ]
    assert (
        forwarded["max_completion_tokens"],  # the openai provider modernises max_tokens,
        forwarded["temperature"],
        forwarded["stop"],
        forwarded["user"],
    ) == (
        100,
        0.3,
        ["STOP"],
        "user-42",
    )


def test_stream(client: anthropic.Anthropic, upstream: FakeOpenAIUpstream) -> None:
    upstream.script(Scenario(chunks=5))
    with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(texts) > 1
    assert "".join(texts) == "Echo: Hello gateway"
    assert final.content[0].type == "text" and final.content[0].text == "Echo: Hello gateway"
    assert final.stop_reason == "end_turn"
    # cumulative usage from the upstream's final usage chunk (the fake: one token per word)
    assert final.usage.output_tokens == 3
    assert final.usage.input_tokens == 2
    assert upstream.requests[-1].json["stream_options"] == {"include_usage": True}


def test_raw_stream_event_sequence(gateway: RunningGateway) -> None:
    reply = post(
        gateway.url + "/v1/messages",
        {"model": "mock-gpt", "max_tokens": 50, "stream": True, "messages": HELLO},
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01", "anthropic-beta": "x-2025"},
    )
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert reply.headers["request-id"] == reply.headers["x-request-id"]
    names = [line[7:] for line in reply.body.decode().splitlines() if line.startswith("event: ")]
    assert names[:4] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}


def test_tools_round_trip(client: anthropic.Anthropic, upstream: FakeOpenAIUpstream) -> None:
    question: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=question,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
    )
    assert first.stop_reason == "tool_use"
    tool_use = first.content[-1]
    assert tool_use.type == "tool_use" and tool_use.name == "get_weather"
    assert isinstance(tool_use.input, dict) and "city" in tool_use.input
    sent = upstream.requests[-1].json
    assert sent["tools"][0]["function"]["parameters"] == WEATHER_TOOL["input_schema"]
    assert sent["tool_choice"] == "required"

    second = client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[
            *question,
            {
                "role": "assistant",
                "content": [block.model_dump(exclude_none=True) for block in first.content],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use.id, "content": "18 degrees"}
                ],
            },
        ],
    )
    assert second.content[0].type == "text"
    assert second.content[0].text == "Tool result: 18 degrees"
    messages = upstream.requests[-1].json["messages"]
    assert messages[1]["tool_calls"][0]["id"] == tool_use.id  # ids kept verbatim
    assert messages[2] == {"role": "tool", "content": "18 degrees", "tool_call_id": tool_use.id}


def test_streamed_tool_call(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL,
        max_tokens=100,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    tool_use = final.content[-1]
    assert tool_use.type == "tool_use" and tool_use.name == "get_weather"
    assert isinstance(tool_use.input, dict) and "city" in tool_use.input


def test_mock_provider_create_and_stream(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="mock-gpt", max_tokens=100, messages=HELLO)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Mock reply to: Hello gateway"
    with client.messages.stream(model="mock-gpt", max_tokens=100, messages=HELLO) as stream:
        assert "".join(stream.text_stream) == "Mock reply to: Hello gateway"
        final = stream.get_final_message()
    assert final.model == "mock-gpt"
    assert final.usage.output_tokens == message.usage.output_tokens > 0


def test_count_tokens(client: anthropic.Anthropic, upstream: FakeOpenAIUpstream) -> None:
    before = len(upstream.requests)
    counted = client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "hello world"}]
    )
    # OpenAI framing: 3 (reply priming) + 3 (message) + 1 (role) + 2 ("hello world", o200k_base)
    assert counted.input_tokens == 9
    bigger = client.messages.count_tokens(
        model=MODEL,
        system="You are terse.",
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "hello world"}],
    )
    assert bigger.input_tokens > counted.input_tokens + 10
    assert len(upstream.requests) == before  # counted offline


def test_bearer_auth_is_accepted(gateway: RunningGateway) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, auth_token="token", max_retries=0)
    message = client.messages.create(model="mock-gpt", max_tokens=10, messages=HELLO)
    assert message.content


# --- errors ---------------------------------------------------------------------


def test_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="no-such-model", max_tokens=10, messages=HELLO)
    assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert info.value.request_id is not None and info.value.request_id.startswith("req_")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="no-such-model", messages=HELLO)


def test_missing_max_tokens_is_a_bad_request(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.post("/v1/messages", body={"model": MODEL, "messages": HELLO}, cast_to=object)
    assert info.value.body["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }  # type: ignore[index]


def test_malformed_json_is_a_bad_request(gateway: RunningGateway) -> None:
    reply = post(gateway.url + "/v1/messages", b"{not json")
    assert reply.status == 400
    assert reply.json["type"] == "error"
    assert reply.json["error"]["type"] == "invalid_request_error"
    assert reply.json["request_id"] == reply.headers["request-id"]


def test_server_tools_are_refused(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model=MODEL,
            max_tokens=10,
            messages=HELLO,
            tools=[{"type": "web_search_20250305", "name": "web_search"}],
        )
    assert "tools.0.type" in info.value.message


def test_upstream_overload_is_relayed(
    client: anthropic.Anthropic, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(status=529))
    with pytest.raises(anthropic.OverloadedError) as info:
        client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_upstream_rate_limit_is_relayed(
    client: anthropic.Anthropic, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(status=429, retry_after=3))
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert info.value.response.headers["retry-after"] == "3"
    assert info.value.response.headers["retry-after-ms"] == "3000"


def test_mid_stream_failure_raises_in_the_sdk(
    client: anthropic.Anthropic, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(reset_after=4, chunks=10))
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream,
    ):
        received.extend(stream.text_stream)
    assert received  # some text arrived before the failure
    assert info.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_stream_error_before_any_byte_is_a_plain_error(
    client: anthropic.Anthropic, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(status=500))
    with (
        pytest.raises(anthropic.InternalServerError),
        client.messages.stream(model=MODEL, max_tokens=10, messages=HELLO) as stream,
    ):
        stream.get_final_message()


# --- anthropic SDK -> gateway -> Anthropic upstream (the fake) --------------------

CLAUDE = "claude-haiku-4-5"


@pytest.fixture(scope="module")
def claude_gateway() -> Iterator[tuple[RunningGateway, FakeAnthropicUpstream]]:
    """A gateway whose only model is served by the Anthropic fake (so native parameters pass)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GW_TEST_ANTHROPIC_KEY", UPSTREAM_KEY)
    config = {
        "auth": {"mode": "open"},
        "providers": {
            "claude": {
                "type": "anthropic",
                "base_url": "",
                "api_key": "${env:GW_TEST_ANTHROPIC_KEY}",
            }
        },
        "models": [{"name": CLAUDE, "deployments": [{"provider": "claude", "model": CLAUDE}]}],
    }
    with run_in_thread(FakeAnthropicUpstream(api_key=UPSTREAM_KEY, stream_chunks=4)) as fake:
        config["providers"]["claude"]["base_url"] = fake.url  # type: ignore[index]
        with run_gateway_in_thread(config) as gateway:
            yield gateway, fake
    mp.undo()


@pytest.fixture
def claude(claude_gateway: tuple[RunningGateway, FakeAnthropicUpstream]) -> anthropic.Anthropic:
    gateway, fake = claude_gateway
    fake.reset()
    return anthropic.Anthropic(base_url=gateway.url, api_key="client-key", max_retries=0)


def test_anthropic_upstream_create_and_stream(
    claude: anthropic.Anthropic, claude_gateway: tuple[RunningGateway, FakeAnthropicUpstream]
) -> None:
    fake = claude_gateway[1]
    message = claude.messages.create(
        model=CLAUDE, max_tokens=50, system="Be terse.", messages=HELLO
    )
    assert message.content[0].type == "text" and message.content[0].text == "Echo: Hello gateway"
    assert message.stop_reason == "end_turn"
    sent = fake.requests[-1]
    assert sent.headers["x-api-key"] == UPSTREAM_KEY  # the gateway's key, not the client's
    assert sent.json["system"] == "Be terse."
    assert sent.json["max_tokens"] == 50
    with claude.messages.stream(
        model=CLAUDE, max_tokens=50, system="Be terse.", messages=HELLO
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(texts) > 1 and "".join(texts) == "Echo: Hello gateway"
    assert final.usage.output_tokens == message.usage.output_tokens
    assert final.usage.input_tokens == message.usage.input_tokens


def test_anthropic_upstream_tools(
    claude: anthropic.Anthropic, claude_gateway: tuple[RunningGateway, FakeAnthropicUpstream]
) -> None:
    fake = claude_gateway[1]
    question: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    with claude.messages.stream(
        model=CLAUDE, max_tokens=100, messages=question, tools=[WEATHER_TOOL]
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    tool_use = first.content[-1]
    assert tool_use.type == "tool_use" and tool_use.name == "get_weather"
    assert fake.requests[-1].json["tools"][0]["input_schema"] == WEATHER_TOOL["input_schema"]
    second = claude.messages.create(
        model=CLAUDE,
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[
            *question,
            {
                "role": "assistant",
                "content": [block.model_dump(exclude_none=True) for block in first.content],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_use.id,
                        "content": "sensor down",
                        "is_error": True,
                    }
                ],
            },
        ],
    )
    assert second.content[0].type == "text" and "sensor down" in second.content[0].text
    result = fake.requests[-1].json["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == tool_use.id
    assert result["is_error"] is True  # carried natively to an Anthropic upstream


def test_anthropic_upstream_gets_native_parameters_and_cache_usage(
    claude: anthropic.Anthropic, claude_gateway: tuple[RunningGateway, FakeAnthropicUpstream]
) -> None:
    fake = claude_gateway[1]
    system: list[Any] = [
        {"type": "text", "text": "A long shared preamble.", "cache_control": {"type": "ephemeral"}}
    ]
    first = claude.messages.create(
        model=CLAUDE, max_tokens=50, system=system, messages=HELLO, extra_body={"top_k": 5}
    )
    sent = fake.requests[-1].json
    assert sent["top_k"] == 5
    assert sent["system"][0]["cache_control"] == {"type": "ephemeral"}
    second = claude.messages.create(model=CLAUDE, max_tokens=50, system=system, messages=HELLO)
    assert first.usage.cache_creation_input_tokens and not first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.input_tokens == first.usage.input_tokens


def test_anthropic_upstream_mid_stream_error_event(
    claude: anthropic.Anthropic, claude_gateway: tuple[RunningGateway, FakeAnthropicUpstream]
) -> None:
    claude_gateway[1].script(Scenario(error_event_after=4))
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        claude.messages.stream(model=CLAUDE, max_tokens=50, messages=HELLO) as stream,
    ):
        stream.get_final_message()
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]

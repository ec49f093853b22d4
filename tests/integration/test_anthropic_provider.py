"""The official openai SDK -> gateway -> provider ``anthropic`` -> the fake Anthropic upstream.

Everything over real sockets. The fake validates request bodies like the real
Messages API (unknown parameters, tool_use/tool_result pairing, empty text ...),
so a translation mistake surfaces as a 400 here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from gatewise.testing import FakeAnthropicUpstream, Scenario, run_in_thread
from gatewise.testing.anthropic_reply import REDACTED_DATA, thinking_signature
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from tests.rawhttp import post

KEY = "sk-ant-api03-upstream-secret-0123456789"
UPSTREAM_MODEL = "claude-haiku-4-5"
HELLO = [{"role": "user", "content": "hello there"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def anthropic_provider(url: str, key_env: str = "GW_TEST_ANTHROPIC_KEY") -> dict[str, Any]:
    return {
        "type": "anthropic",
        "base_url": url,
        "api_key": f"${{env:{key_env}}}",
        "default_max_tokens": 321,
        "timeouts": {"first_byte": 1.0, "idle": 1.0, "total": 5},
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropicUpstream]:
    with run_in_thread(FakeAnthropicUpstream(api_key=KEY)) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(fake: FakeAnthropicUpstream) -> Iterator[RunningGateway]:
    patch = pytest.MonkeyPatch()
    patch.setenv("GW_TEST_ANTHROPIC_KEY", KEY)
    config = {
        "auth": {"mode": "open"},
        "providers": {"a": anthropic_provider(fake.url), "b": anthropic_provider(fake.url)},
        "models": [
            {"name": "claude", "deployments": [{"provider": "a", "model": UPSTREAM_MODEL}]},
            {
                "name": "claude-ha",
                "deployments": [
                    {"provider": "a", "model": "claude-opus-4-7"},
                    {"provider": "b", "model": "claude-sonnet-4-6"},
                ],
            },
        ],
    }
    with run_gateway_in_thread(config) as running:
        yield running
    patch.undo()


@pytest.fixture
def upstream(fake: FakeAnthropicUpstream) -> FakeAnthropicUpstream:
    fake.reset()
    return fake


@pytest.fixture
def client(gateway: RunningGateway, upstream: FakeAnthropicUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.openai_base_url, api_key="client-key", max_retries=0)


def test_chat_sends_anthropic_headers_and_body(
    client: openai.OpenAI, upstream: FakeAnthropicUpstream
) -> None:
    completion = client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": "Be brief."},
            *HELLO,  # type: ignore[list-item]
            {"role": "developer", "content": "Answer in English."},
        ],
        stop=["never"],
        temperature=1.5,
        user="user-7",
    )
    assert completion.id.startswith("msg_")
    assert completion.model == UPSTREAM_MODEL
    assert abs(completion.created - time.time()) < 60
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 7  # one per word: system, then user
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 3
    sent = upstream.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.json == {
        "model": UPSTREAM_MODEL,
        "max_tokens": 321,
        "messages": [{"role": "user", "content": "hello there"}],
        "temperature": 1.0,
        "stop_sequences": ["never"],
        "metadata": {"user_id": "user-7"},
        "system": "Be brief.\n\nAnswer in English.",
    }


def test_stream_with_include_usage(client: openai.OpenAI, upstream: FakeAnthropicUpstream) -> None:
    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=HELLO,  # type: ignore[arg-type]
            max_completion_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: hello there"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (2, 3)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("msg_")
    assert upstream.requests[-1].json["stream"] is True
    assert upstream.requests[-1].json["max_tokens"] == 50
    plain = list(client.chat.completions.create(model="claude", messages=HELLO, stream=True))  # type: ignore[arg-type]
    assert all(c.choices for c in plain)  # the usage chunk only when asked for


def test_tool_calls_and_the_tool_result_turn(
    client: openai.OpenAI, upstream: FakeAnthropicUpstream
) -> None:
    question = [{"role": "user", "content": "Use get_weather and get_time for Oslo"}]
    completion = client.chat.completions.create(
        model="claude", messages=question, tools=[WEATHER, TIME]
    )  # type: ignore[arg-type, list-item]
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    calls = message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"city": "fake"}  # type: ignore[union-attr]
    assert all(c.id.startswith("toolu_") and c.type == "function" for c in calls)
    sent = upstream.requests[-1].json
    assert sent["tools"][0]["input_schema"] == WEATHER["function"]["parameters"]  # type: ignore[index]
    assert "tool_choice" not in sent

    follow_up = [
        *question,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": calls[0].id, "content": "12C and windy"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "10:00"},
    ]
    answer = client.chat.completions.create(
        model="claude", messages=follow_up, tools=[WEATHER, TIME]
    )  # type: ignore[arg-type, list-item]
    assert answer.choices[0].message.content == "Tool result: 12C and windy 10:00"
    last_turn = upstream.requests[-1].json["messages"][-1]
    assert [b["type"] for b in last_turn["content"]] == ["tool_result", "tool_result"]

    single = client.chat.completions.create(
        model="claude",
        messages=question,  # type: ignore[arg-type]
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        tool_choice="required",
        parallel_tool_calls=False,
    )
    assert len(single.choices[0].message.tool_calls or []) == 1
    assert upstream.requests[-1].json["tool_choice"] == {
        "type": "any",
        "disable_parallel_tool_use": True,
    }


def test_streamed_tool_calls(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "get_time and get_weather please"}],
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += delta.id or ""
                if delta.function is not None:
                    entry["name"] += delta.function.name or ""
                    entry["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert [calls[0]["name"], calls[1]["name"]] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "fake"}
    assert json.loads(calls[1]["arguments"]) == {}
    assert all(c["id"].startswith("toolu_") for c in calls.values())


THINKING = {"type": "enabled", "budget_tokens": 1024}
THOUGHT = "Let me think about this request step by step."  # what the fake thinks
OSLO = [{"role": "user", "content": "Weather in Oslo?"}]


def test_thinking_arrives_as_reasoning_content_and_thinking_blocks(
    client: openai.OpenAI, upstream: FakeAnthropicUpstream
) -> None:
    plain = client.chat.completions.create(
        model="claude",
        messages=HELLO,  # type: ignore[arg-type]
        max_tokens=2000,
        extra_body={"thinking": THINKING},
    )
    message = plain.choices[0].message
    assert message.content == "Echo: hello there"
    assert message.model_extra == {
        "reasoning_content": THOUGHT,
        "thinking_blocks": [
            {"type": "thinking", "thinking": THOUGHT, "signature": thinking_signature(THOUGHT)}
        ],
    }
    assert upstream.requests[-1].json["thinking"] == THINKING
    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=HELLO,  # type: ignore[arg-type]
            max_tokens=2000,
            stream=True,
            extra_body={"thinking": THINKING},
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "Echo: hello there"
    assert "".join((d.model_extra or {}).get("reasoning_content", "") for d in deltas) == THOUGHT
    blocks = [b for d in deltas for b in (d.model_extra or {}).get("thinking_blocks", [])]
    assert blocks == message.model_extra["thinking_blocks"]
    # replies without thinking keep OpenAI's exact shape
    bare = client.chat.completions.create(model="claude", messages=HELLO)  # type: ignore[arg-type]
    assert bare.choices[0].message.model_extra == {}
    assert bare.choices[0].model_extra == {}


def collect(stream: Any) -> dict[str, Any]:
    """An assistant message assembled from OpenAI stream chunks, thinking blocks included."""
    calls: dict[int, dict[str, Any]] = {}
    blocks: list[Any] = []
    reasoning = []
    for chunk in stream:
        for choice in chunk.choices:
            delta = choice.delta
            extra = delta.model_extra or {}
            blocks += extra.get("thinking_blocks", [])
            reasoning.append(extra.get("reasoning_content", ""))
            for call in delta.tool_calls or ():
                entry = calls.setdefault(
                    call.index,
                    {"id": call.id, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                if call.function and call.function.name:
                    entry["function"]["name"] = call.function.name
                if call.function and call.function.arguments:
                    entry["function"]["arguments"] += call.function.arguments
    message: dict[str, Any] = {"role": "assistant", "tool_calls": list(calls.values())}
    if blocks:
        message["thinking_blocks"] = blocks
        message["reasoning_content"] = "".join(reasoning)
    return message


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_thinking_tool_loop_from_an_openai_client(
    client: openai.OpenAI, upstream: FakeAnthropicUpstream, stream: bool
) -> None:
    def ask(messages: list[Any]) -> Any:
        return client.chat.completions.create(
            model="claude",
            messages=messages,
            tools=[WEATHER],  # type: ignore[list-item]
            max_tokens=2000,
            stream=stream,
            extra_body={"thinking": THINKING},
        )

    upstream.script(Scenario(redacted_thinking=True))
    first = ask(OSLO)
    assistant = collect(first) if stream else first.choices[0].message.model_dump(exclude_none=True)
    assert assistant["reasoning_content"] == THOUGHT
    assert assistant["thinking_blocks"] == [
        {"type": "thinking", "thinking": THOUGHT, "signature": thinking_signature(THOUGHT)},
        {"type": "redacted_thinking", "data": REDACTED_DATA},
    ]
    call = assistant["tool_calls"][0]
    result = {"role": "tool", "tool_call_id": call["id"], "content": "12C"}
    # The assistant message goes back as received (LiteLLM-style clients keep thinking_blocks).
    second = ask([*OSLO, assistant, result])
    answer = collect_text(second) if stream else second.choices[0].message.content
    assert answer == "Tool result: 12C"
    sent = upstream.requests[-1].json["messages"][1]["content"]
    assert [block["type"] for block in sent] == ["thinking", "redacted_thinking", "tool_use"]
    assert sent[:2] == assistant["thinking_blocks"]
    # Without them the upstream refuses the loop, as the real API does.
    bare = {k: v for k, v in assistant.items() if k not in ("thinking_blocks", "reasoning_content")}
    with pytest.raises(openai.BadRequestError) as refused:
        collect_text(ask([*OSLO, bare, result])) if stream else ask([*OSLO, bare, result])
    assert "Expected `thinking` or `redacted_thinking`" in refused.value.message


def collect_text(stream: Any) -> str:
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_stop_sequence_reaches_openai_clients_as_a_choice_field(
    client: openai.OpenAI, upstream: FakeAnthropicUpstream
) -> None:
    question = [{"role": "user", "content": "say the magic word now"}]
    completion = client.chat.completions.create(model="claude", messages=question, stop=["magic"])  # type: ignore[arg-type]
    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("Echo: say the ", "stop")
    assert choice.model_extra == {"stop_sequence": "magic"}
    chunks = list(
        client.chat.completions.create(
            model="claude",
            messages=question,  # type: ignore[arg-type]
            stop=["magic"],
            stream=True,
        )
    )
    finish = [c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish[0].model_extra == {"stop_sequence": "magic"}


def test_prompt_cache_tokens_are_reported(client: openai.OpenAI) -> None:
    system = {
        "role": "system",
        "content": [
            {
                "type": "text",
                "text": "Long shared rules " * 20,
                "cache_control": {"type": "ephemeral"},
            }
        ],
    }
    messages = [system, *HELLO]
    first = client.chat.completions.create(model="claude", messages=messages)  # type: ignore[arg-type]
    second = client.chat.completions.create(model="claude", messages=messages)  # type: ignore[arg-type]
    assert first.usage is not None and second.usage is not None
    assert first.usage.prompt_tokens == second.usage.prompt_tokens == 62
    written, read = first.usage.prompt_tokens_details, second.usage.prompt_tokens_details
    assert written is not None and read is not None
    assert (written.cached_tokens, getattr(written, "cache_write_tokens", None)) == (0, 60)
    assert (read.cached_tokens, getattr(read, "cache_write_tokens", None)) == (60, 0)


def test_overloaded_529_reaches_the_sdk(
    client: openai.OpenAI, upstream: FakeAnthropicUpstream
) -> None:
    upstream.script(Scenario(status=529))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="claude", messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == 529
    assert caught.value.body == {
        "message": "Overloaded",
        "type": "overloaded_error",
        "param": None,
        "code": None,
    }


def test_529_fails_over_to_the_next_deployment(
    client: openai.OpenAI, upstream: FakeAnthropicUpstream
) -> None:
    upstream.script(Scenario(status=529))
    completion = client.chat.completions.create(model="claude-ha", messages=HELLO)  # type: ignore[arg-type]
    assert completion.model == "claude-sonnet-4-6"
    assert [r.json["model"] for r in upstream.requests] == ["claude-opus-4-7", "claude-sonnet-4-6"]


def test_rate_limit_relays_retry_after(
    client: openai.OpenAI, upstream: FakeAnthropicUpstream
) -> None:
    upstream.script(Scenario(status=429, retry_after=3))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="claude", messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.response.headers["retry-after-ms"] == "3000"
    assert "rate limit" in caught.value.message


def test_mid_stream_error_event_raises_in_the_sdk(
    client: openai.OpenAI, upstream: FakeAnthropicUpstream
) -> None:
    upstream.script(Scenario(error_event_after=5))
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model="claude", messages=HELLO, stream=True):  # type: ignore[arg-type]
            received.append(chunk)
    assert received, "chunks before the failure reach the client"
    assert "Overloaded" in caught.value.message


@pytest.mark.parametrize(
    ("scenario", "stream", "status"),
    [
        (Scenario(garbage=True), False, 502),
        (Scenario(reset_after=1), False, 502),
        (Scenario(slow_first_byte=2), False, 504),
        # Garbage before the first event: nothing reached the client, so the stream fails
        # like a plain call (and would fail over to another deployment).
        (Scenario(garbage_stream=True), True, 502),
        (Scenario(reset_after=3), True, 200),
    ],
    ids=["garbage", "reset", "slow", "garbage-stream", "reset-stream"],
)
def test_broken_upstreams_answer_openai_errors(
    gateway: RunningGateway,
    upstream: FakeAnthropicUpstream,
    scenario: Scenario,
    stream: bool,
    status: int,
) -> None:
    upstream.script(scenario)
    reply = post(
        gateway.openai_base_url + "/chat/completions",
        {"model": "claude", "messages": HELLO, "stream": stream},
    )
    assert reply.status == status
    if status == 200:
        events = [e for e in reply.body.split(b"\n\n") if e]
        assert events[-1].startswith(b'data: {"error":')
    else:
        assert set(reply.json["error"]) == {"message", "type", "param", "code"}


def test_requests_anthropic_cannot_serve_are_400s(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="claude", messages=HELLO, n=2)  # type: ignore[arg-type]
    assert caught.value.param == "n"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as embed:
        client.embeddings.create(model="claude", input="x")
    assert "no embeddings API" in embed.value.message
    bad_arguments = [
        *HELLO,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "x"},
    ]
    with pytest.raises(openai.BadRequestError) as invalid:
        client.chat.completions.create(model="claude", messages=bad_arguments)  # type: ignore[arg-type]
    assert "messages[1].tool_calls[0].function.arguments" in invalid.value.message


def test_wrong_upstream_key_is_not_leaked(
    start_gateway, monkeypatch: pytest.MonkeyPatch, fake: FakeAnthropicUpstream
) -> None:  # type: ignore[no-untyped-def]
    wrong = "sk-ant-api03-wrong-gateway-key-abcdefgh"
    monkeypatch.setenv("GW_TEST_WRONG_ANTHROPIC_KEY", wrong)
    provider = anthropic_provider(fake.url, "GW_TEST_WRONG_ANTHROPIC_KEY")
    gateway = start_gateway(
        {
            "auth": {"mode": "open"},
            "providers": {"a": provider},
            "models": [
                {"name": "claude", "deployments": [{"provider": "a", "model": UPSTREAM_MODEL}]}
            ],
        }
    )
    reply = post(
        gateway.openai_base_url + "/chat/completions", {"model": "claude", "messages": HELLO}
    )
    assert fake.requests[-1].headers["x-api-key"] == wrong
    assert reply.status == 401
    assert reply.json["error"]["type"] == "authentication_error"
    assert reply.json["error"]["message"] == "invalid x-api-key"
    assert wrong not in reply.body.decode() and "wrong-gateway" not in reply.body.decode()


# --- the fake itself, checked against the official anthropic SDK ---------------------


def test_fake_speaks_what_the_anthropic_sdk_parses(upstream: FakeAnthropicUpstream) -> None:
    sdk = anthropic.Anthropic(base_url=upstream.url, api_key=KEY, max_retries=0)
    message = sdk.messages.create(model=UPSTREAM_MODEL, max_tokens=50, messages=HELLO)  # type: ignore[arg-type]
    assert message.content[0].type == "text" and message.content[0].text == "Echo: hello there"
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "end_turn",
        2,
        3,
    )
    with sdk.messages.stream(
        model=UPSTREAM_MODEL,
        max_tokens=2000,
        messages=HELLO,  # type: ignore[arg-type]
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Echo: hello there"
    assert [block.type for block in final.content] == ["thinking", "text"]
    tools = [{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}]  # type: ignore[index]
    with sdk.messages.stream(
        model=UPSTREAM_MODEL,
        max_tokens=50,
        messages=HELLO,
        tools=tools,  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == {"city": "fake"}
    count = sdk.messages.count_tokens(model=UPSTREAM_MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert count.input_tokens == 2
    assert UPSTREAM_MODEL in [model.id for model in sdk.models.list()]


@pytest.mark.parametrize(
    ("marker", "error", "status"),
    [
        ("[[fake:status=529]]", anthropic.OverloadedError, 529),
        ("[[fake:status=429]] [[fake:retry_after=4]]", anthropic.RateLimitError, 429),
        ("[[fake:status=404]]", anthropic.NotFoundError, 404),
    ],
)
def test_fake_errors_by_marker(
    upstream: FakeAnthropicUpstream, marker: str, error: type[Exception], status: int
) -> None:
    sdk = anthropic.Anthropic(base_url=upstream.url, api_key=KEY, max_retries=0)
    with pytest.raises(error) as caught:
        sdk.messages.create(
            model=UPSTREAM_MODEL,
            max_tokens=5,
            messages=[{"role": "user", "content": f"hi {marker}"}],
        )
    failure = caught.value
    assert isinstance(failure, anthropic.APIStatusError) and failure.status_code == status
    assert failure.body["request_id"].startswith("req_")  # type: ignore[index]
    if status == 429:
        assert failure.response.headers["retry-after"] == "4"
        assert failure.response.headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_fake_rejects_what_the_real_api_rejects(upstream: FakeAnthropicUpstream) -> None:
    sdk = anthropic.Anthropic(base_url=upstream.url, api_key=KEY, max_retries=0)
    cases = [
        (
            {"max_tokens": 5, "messages": HELLO, "extra_body": {"logprobs": True}},
            "logprobs: Extra inputs",
        ),
        (
            {"max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            "Input should be 'user'",
        ),
        (
            {"max_tokens": 5, "messages": HELLO, "extra_body": {"temperature": 1.5}},
            "less than or equal to 1",
        ),
        (
            {
                "max_tokens": 5,
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x"}]}
                ],
            },
            "unexpected `tool_use_id`",
        ),
    ]
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    loop = [
        *HELLO,
        {"role": "assistant", "content": [tool_use]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]},
    ]
    forged = {"type": "thinking", "thinking": "hm", "signature": "forged"}
    cases += [
        (
            {"max_tokens": 2000, "thinking": THINKING, "messages": loop},
            "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            "`tool_use`. When `thinking` is enabled, a final `assistant` message must start "
            "with a thinking block",
        ),
        (
            {
                "max_tokens": 2000,
                "thinking": THINKING,
                "messages": [
                    loop[0],
                    {"role": "assistant", "content": [forged, tool_use]},
                    loop[2],
                ],
            },
            "messages.1.content.0: Invalid `signature` in `thinking` block",
        ),
    ]
    for fields, fragment in cases:
        with pytest.raises(anthropic.BadRequestError) as caught:
            sdk.messages.create(model=UPSTREAM_MODEL, **fields)  # type: ignore[arg-type, call-overload]
        assert fragment in caught.value.message
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=upstream.url, api_key="nope", max_retries=0).messages.create(
            model=UPSTREAM_MODEL,
            max_tokens=5,
            messages=HELLO,  # type: ignore[arg-type]
        )
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        upstream.script(Scenario(error_event_after=3))
        with sdk.messages.stream(model=UPSTREAM_MODEL, max_tokens=5, messages=HELLO) as stream:  # type: ignore[arg-type]
            stream.get_final_message()


def test_fake_thinking_redacted_thinking_and_citations(upstream: FakeAnthropicUpstream) -> None:
    sdk = anthropic.Anthropic(base_url=upstream.url, api_key=KEY, max_retries=0)
    ask = [{"role": "user", "content": "cite this [[fake:redacted_thinking]] [[fake:citations]]"}]
    message = sdk.messages.create(
        model=UPSTREAM_MODEL,
        max_tokens=2000,
        messages=ask,  # type: ignore[arg-type]
        thinking=THINKING,  # type: ignore[arg-type]
    )
    thinking, redacted, text = message.content
    assert thinking.type == "thinking" and thinking.thinking == THOUGHT
    assert thinking.signature == thinking_signature(THOUGHT)
    assert redacted.type == "redacted_thinking" and redacted.data == REDACTED_DATA
    assert text.type == "text" and text.text == "Echo: cite this"
    assert text.citations is not None and text.citations[0].cited_text == "Echo: cite this"
    with sdk.messages.stream(
        model=UPSTREAM_MODEL,
        max_tokens=2000,
        messages=ask,  # type: ignore[arg-type]
        thinking=THINKING,  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_message()
    assert final.model_dump(exclude={"id"}) == message.model_dump(exclude={"id"})
    # the signed blocks go back in a tool loop
    tools = [{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}]  # type: ignore[index]
    first = sdk.messages.create(
        model=UPSTREAM_MODEL,
        max_tokens=2000,
        messages=HELLO,  # type: ignore[arg-type]
        thinking=THINKING,  # type: ignore[arg-type]
        tools=tools,  # type: ignore[arg-type]
    )
    tool_use = first.content[-1]
    assert tool_use.type == "tool_use"
    second = sdk.messages.create(
        model=UPSTREAM_MODEL,
        max_tokens=2000,
        thinking=THINKING,  # type: ignore[arg-type]
        tools=tools,  # type: ignore[arg-type]
        messages=[
            *HELLO,  # type: ignore[list-item]
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "ok"}],
            },
        ],
    )
    assert second.content[-1].type == "text" and second.content[-1].text == "Tool result: ok"


def test_mock_upstream_cli_knows_the_anthropic_format() -> None:
    import importlib

    from gatewise.testing.cli import FORMATS

    module, _, name = FORMATS["anthropic"].partition(":")
    fake = getattr(importlib.import_module(module), name)(api_key="k", record=False)
    assert isinstance(fake, FakeAnthropicUpstream) and fake.record is False

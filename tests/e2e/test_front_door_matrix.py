"""Every front door reaches every provider: official SDKs, real sockets, plain and streamed.

One gateway serves a model on each upstream kind (OpenAI, Anthropic and Gemini fakes, and
the built-in mock); each front door's SDK calls each of them and must get text and usage.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import anthropic
import openai
import pytest

from gatewise.testing import (
    FakeAnthropicUpstream,
    FakeGeminiUpstream,
    FakeOpenAIUpstream,
    run_in_thread,
)
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread

MODELS = ["on-openai", "on-anthropic", "on-gemini", "on-mock"]
PROMPT = "Say something about gateways"


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    mp = pytest.MonkeyPatch()
    mp.setenv("GW_MATRIX_KEY", "matrix-upstream-key")
    key = "${env:GW_MATRIX_KEY}"
    with ExitStack() as stack:
        oa = stack.enter_context(run_in_thread(FakeOpenAIUpstream(api_key="matrix-upstream-key")))
        an = stack.enter_context(
            run_in_thread(FakeAnthropicUpstream(api_key="matrix-upstream-key"))
        )
        ge = stack.enter_context(run_in_thread(FakeGeminiUpstream(api_key="matrix-upstream-key")))
        config = {
            "auth": {"mode": "open"},
            "providers": {
                "oa": {"type": "openai", "base_url": oa.url + "/v1", "api_key": key},
                "an": {"type": "anthropic", "base_url": an.url, "api_key": key},
                "ge": {"type": "gemini", "base_url": ge.base_url, "api_key": key},
                "mock": {"type": "mock"},
            },
            "models": [
                {"name": "on-openai", "deployments": [{"provider": "oa", "model": "gpt-4o-mini"}]},
                {
                    "name": "on-anthropic",
                    "deployments": [{"provider": "an", "model": "claude-haiku-4-5"}],
                },
                {
                    "name": "on-gemini",
                    "deployments": [{"provider": "ge", "model": "gemini-2.5-flash"}],
                },
                {"name": "on-mock", "deployments": [{"provider": "mock", "model": "mock"}]},
            ],
        }
        yield stack.enter_context(run_gateway_in_thread(config))
    mp.undo()


@pytest.fixture
def chat_client(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0)


@pytest.fixture
def messages_client(gateway: RunningGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="k", max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_chat_completions(chat_client: openai.OpenAI, model: str) -> None:
    reply = chat_client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": PROMPT}]
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    stream = chat_client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_responses(chat_client: openai.OpenAI, model: str) -> None:
    first = chat_client.responses.create(model=model, input=PROMPT)
    assert first.output_text and first.usage is not None and first.usage.output_tokens > 0
    second = chat_client.responses.create(
        model=model, input="And again?", previous_response_id=first.id
    )
    assert second.output_text and second.previous_response_id == first.id
    with chat_client.responses.stream(model=model, input=PROMPT) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_response()
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert "response.output_text.delta" in events
    assert final.output_text and final.usage is not None


@pytest.mark.parametrize("model", MODELS)
def test_messages(messages_client: anthropic.Anthropic, model: str) -> None:
    message = messages_client.messages.create(
        model=model, max_tokens=200, messages=[{"role": "user", "content": PROMPT}]
    )
    assert message.content[0].type == "text" and message.content[0].text  # type: ignore[union-attr]
    assert message.usage.output_tokens > 0 and message.stop_reason == "end_turn"
    with messages_client.messages.stream(
        model=model, max_tokens=200, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_tool_calls_through_every_door(
    chat_client: openai.OpenAI, messages_client: anthropic.Anthropic, model: str
) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    reply = chat_client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Weather in Paris? use get_weather"}],
        tools=[tool],
        tool_choice="required",  # type: ignore[list-item]
    )
    call = (reply.choices[0].message.tool_calls or [None])[0]
    assert call is not None and call.function.name == "get_weather"  # type: ignore[union-attr]
    message = messages_client.messages.create(
        model=model,
        max_tokens=200,
        messages=[{"role": "user", "content": "Weather in Paris? use get_weather"}],
        tools=[
            {
                "name": "get_weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        tool_choice={"type": "any"},
    )
    assert any(
        block.type == "tool_use" and block.name == "get_weather" for block in message.content
    )


def test_models_in_each_sdks_shape(
    chat_client: openai.OpenAI, messages_client: anthropic.Anthropic
) -> None:
    assert [m.id for m in chat_client.models.list()] == MODELS
    listed = messages_client.models.list()
    assert [m.id for m in listed.data] == MODELS
    assert listed.data[0].type == "model" and listed.data[0].created_at.year >= 2023
    assert messages_client.models.retrieve("on-gemini").id == "on-gemini"
    with pytest.raises(anthropic.NotFoundError) as caught:
        messages_client.models.retrieve("nope")
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        chat_client.models.retrieve("nope")

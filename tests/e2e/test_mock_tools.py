"""The built-in mock provider calls offered tools, so tool-using clients work offline.

An agent's loop through the real SDKs: tools offered -> a tool call whose arguments
fit the tool's schema -> the tool's result sent back -> a text answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "unit": {"enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "days", "unit"],
}
OPENAI_TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    config = {
        "auth": {"mode": "open"},
        "providers": {"mock": {"type": "mock"}},
        "models": [{"name": "mock-gpt", "deployments": [{"provider": "mock", "model": "mock"}]}],
    }
    with run_gateway_in_thread(config) as running:
        yield running


def test_an_openai_agent_loop(gateway: RunningGateway) -> None:
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="unused")
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="mock-gpt", messages=messages, tools=OPENAI_TOOLS)
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # the first offered tool
    arguments = json.loads(call.function.arguments)
    assert set(arguments) == {"city", "days", "unit"}
    assert isinstance(arguments["city"], str) and isinstance(arguments["days"], int)
    assert arguments["unit"] in ("celsius", "fahrenheit")
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = client.chat.completions.create(model="mock-gpt", messages=messages, tools=OPENAI_TOOLS)
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content


def test_forced_none_and_streamed_tool_calls(gateway: RunningGateway) -> None:
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="unused")
    hello: list[Any] = [{"role": "user", "content": "hi"}]
    forced = client.chat.completions.create(
        model="mock-gpt",
        messages=hello,
        tools=OPENAI_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert (forced.choices[0].message.tool_calls or [])[0].function.name == "get_time"
    none = client.chat.completions.create(
        model="mock-gpt", messages=hello, tools=OPENAI_TOOLS, tool_choice="none"
    )
    assert none.choices[0].message.tool_calls is None and none.choices[0].message.content
    stream = client.chat.completions.create(
        model="mock-gpt", messages=hello, tools=OPENAI_TOOLS, stream=True
    )
    fragments = [
        tool
        for chunk in stream
        if chunk.choices
        for tool in chunk.choices[0].delta.tool_calls or ()
    ]
    assert fragments[0].function and fragments[0].function.name == "get_weather"
    arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
    assert set(json.loads(arguments)) == {"city", "days", "unit"}


def test_an_anthropic_agent_loop(gateway: RunningGateway) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="unused")
    tools: list[Any] = [{"name": "get_weather", "input_schema": WEATHER}]
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.messages.create(model="mock-gpt", max_tokens=100, messages=messages, tools=tools)
    assert first.stop_reason == "tool_use"
    [use] = [block for block in first.content if block.type == "tool_use"]
    assert use.name == "get_weather" and set(use.input) == {"city", "days", "unit"}  # type: ignore[arg-type]
    messages += [
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
        },
    ]
    second = client.messages.create(
        model="mock-gpt", max_tokens=100, messages=messages, tools=tools
    )
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"

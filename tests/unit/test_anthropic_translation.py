"""Canonical (OpenAI chat) request -> Anthropic Messages request, as the ``anthropic`` provider sends it.

Responses and streams (the other direction) are in ``test_anthropic_provider_responses.py``.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gatewise.core.errors import InvalidRequestError
from gatewise.formats import openai as openai_wire
from gatewise.providers.anthropic_request import (
    JSON_OBJECT_INSTRUCTION,
    messages_request,
    messages_request_body,
)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
USER = {"role": "user", "content": "hi"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}


def translate(**fields: Any) -> dict[str, Any]:
    body = {"model": "public-name", "messages": [USER], **fields}
    request = openai_wire.parse_chat_request(body)
    return messages_request(request, "claude-haiku-4-5", default_max_tokens=1234, stream=False)


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# --- requests ------------------------------------------------------------------------


def test_minimal_request_uses_the_upstream_model_and_the_default_max_tokens() -> None:
    assert translate() == {
        "model": "claude-haiku-4-5",
        "max_tokens": 1234,
        "messages": [{"role": "user", "content": "hi"}],
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_tokens": 50}, {"max_tokens": 50}),
        ({"max_tokens": 50, "max_completion_tokens": 70}, {"max_tokens": 70}),
        ({"stop": "END"}, {"stop_sequences": ["END"]}),
        ({"stop": ["a", "b"]}, {"stop_sequences": ["a", "b"]}),
        ({"temperature": 0.3, "top_p": 0.9}, {"temperature": 0.3, "top_p": 0.9}),
        ({"temperature": 1.7}, {"temperature": 1.0}),
        ({"temperature": 0}, {"temperature": 0}),
        ({"user": "user-42"}, {"metadata": {"user_id": "user-42"}}),
        ({"safety_identifier": "hash-1"}, {"metadata": {"user_id": "hash-1"}}),
        ({"user": "u", "safety_identifier": "s"}, {"metadata": {"user_id": "u"}}),
        ({"reasoning_effort": "minimal"}, {"output_config": {"effort": "low"}}),
        (
            {"top_k": 5, "thinking": {"type": "adaptive"}},
            {"top_k": 5, "thinking": {"type": "adaptive"}},
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True},
                }
            },
            {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
        ),
        ({"response_format": {"type": "json_object"}}, {"system": JSON_OBJECT_INSTRUCTION}),
        ({"response_format": {"type": "text"}}, {}),
    ],
    ids=lambda value: orjson.dumps(value).decode()[:60],
)
def test_parameters(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = translate(**fields)
    for key, value in expected.items():
        assert body[key] == value
    assert body.keys() - expected.keys() <= {"model", "max_tokens", "messages"}
    assert {"model", "max_tokens", "messages"} <= body.keys()


def test_openai_only_parameters_are_dropped() -> None:
    body = translate(
        logprobs=True,
        top_logprobs=2,
        presence_penalty=0.5,
        frequency_penalty=0.1,
        seed=7,
        metadata={"tag": "x"},
        store=True,
        service_tier="flex",
        stream_options={"include_usage": True},
        n=1,
    )
    assert set(body) == {"model", "max_tokens", "messages"}


def test_streamed_requests_say_so() -> None:
    request = openai_wire.parse_chat_request({"model": "m", "messages": [USER], "stream": True})
    body = orjson.loads(
        messages_request_body(request, "claude-x", default_max_tokens=10, stream=True)
    )
    assert body["stream"] is True


@pytest.mark.parametrize(
    ("messages", "system", "turns"),
    [
        pytest.param(
            [
                {"role": "system", "content": "Be brief."},
                USER,
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "assistant", "content": "Salut"},
                {"role": "system", "content": "Never lie."},
                {"role": "user", "content": "ok"},
            ],
            "Be brief.\n\nUse French.\n\nNever lie.",
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "Salut"},
                {"role": "user", "content": "ok"},
            ],
            id="system-and-developer-messages-are-hoisted-in-order",
        ),
        pytest.param(
            [
                {"role": "user", "content": ""},
                {"role": "user", "content": [{"type": "text", "text": ""}]},
                {"role": "user", "content": "one"},
                {"role": "assistant", "content": ""},
                {"role": "assistant", "content": None},
                {"role": "user", "content": [{"type": "text", "text": "two"}]},
            ],
            None,
            [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
                }
            ],
            id="empty-content-is-dropped-and-same-role-turns-merge",
        ),
        pytest.param(
            [{"role": "user", "content": 'héllo 🌍 日本語 \u2028 "quoted"'}],
            None,
            [{"role": "user", "content": 'héllo 🌍 日本語 \u2028 "quoted"'}],
            id="unicode-is-kept-verbatim",
        ),
        pytest.param(
            [USER, {"role": "assistant", "content": "The answer is  \n"}],
            None,
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "The answer is"}],
            id="a-final-assistant-prefill-loses-trailing-whitespace",
        ),
        pytest.param(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://x.test/cat.jpg", "detail": "low"},
                        },
                    ],
                }
            ],
            None,
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                        {
                            "type": "image",
                            "source": {"type": "url", "url": "https://x.test/cat.jpg"},
                        },
                    ],
                }
            ],
            id="images-as-base64-and-url-sources",
        ),
    ],
)
def test_messages(messages: list[Any], system: str | None, turns: list[Any]) -> None:
    body = translate(messages=messages)
    assert body.get("system") == system
    assert body["messages"] == turns


def test_parallel_tool_calls_and_their_results_make_one_user_turn() -> None:
    body = translate(
        messages=[
            {"role": "user", "content": "Weather and time in Paris?"},
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    call("call_1", "get_weather", '{"city": "Paris"}'),
                    call("call_2", "get_time", ""),
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "9am"}],
            },
            {"role": "user", "content": "Thanks, and tomorrow?"},
        ],
        tools=[WEATHER_TOOL, TIME_TOOL],
    )
    assert body["messages"] == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "9am"}],
                },
                {"type": "text", "text": "Thanks, and tomorrow?"},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather by city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


def test_tool_results_with_images() -> None:
    body = translate(
        messages=[
            USER,
            {"role": "assistant", "tool_calls": [call("call_9", "screenshot", "{}")]},
            {
                "role": "tool",
                "tool_call_id": "call_9",
                "content": [
                    {"type": "text", "text": "Here it is"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            },
        ]
    )
    assert body["messages"][-1] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "call_9",
                "content": [
                    {"type": "text", "text": "Here it is"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                ],
            }
        ],
    }


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected", "tool_names"),
    [
        (None, None, None, ["get_weather", "get_time"]),
        ("auto", None, {"type": "auto"}, ["get_weather", "get_time"]),
        ("required", None, {"type": "any"}, ["get_weather", "get_time"]),
        ("none", None, {"type": "none"}, ["get_weather", "get_time"]),
        (
            {"type": "function", "function": {"name": "get_time"}},
            None,
            {"type": "tool", "name": "get_time"},
            ["get_weather", "get_time"],
        ),
        (
            None,
            False,
            {"type": "auto", "disable_parallel_tool_use": True},
            ["get_weather", "get_time"],
        ),
        (
            "required",
            False,
            {"type": "any", "disable_parallel_tool_use": True},
            ["get_weather", "get_time"],
        ),
        ("none", False, {"type": "none"}, ["get_weather", "get_time"]),
        (None, True, None, ["get_weather", "get_time"]),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "get_time"}}],
                },
            },
            None,
            {"type": "any"},
            ["get_time"],
        ),
    ],
)
def test_tool_choice(
    tool_choice: Any, parallel: bool | None, expected: Any, tool_names: list[str]
) -> None:
    fields: dict[str, Any] = {"tools": [WEATHER_TOOL, TIME_TOOL]}
    if tool_choice is not None:
        fields["tool_choice"] = tool_choice
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    body = translate(**fields)
    assert body.get("tool_choice") == expected
    assert [tool["name"] for tool in body["tools"]] == tool_names


def test_tool_choice_without_tools_is_not_sent() -> None:
    assert "tool_choice" not in translate(tool_choice="required", parallel_tool_calls=False)


def test_cache_control_marks_survive() -> None:
    body = translate(
        messages=[
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}
                ],
            },
            USER,
        ],
        tools=[{**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}}],
    )
    assert body["system"] == [
        {"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}
    ]
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral"}


@pytest.mark.parametrize(
    ("fields", "param", "fragment"),
    [
        ({"n": 2}, "n", "one choice per request"),
        ({"temperature": 2.5}, "temperature", "between 0 and 2"),
        ({"temperature": -0.1}, "temperature", "between 0 and 2"),
        ({"max_tokens": 0}, "max_tokens", "at least 1"),
        (
            {
                "messages": [
                    USER,
                    {"role": "assistant", "tool_calls": [call("c", "f", "{not json")]},
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
            "not valid JSON",
        ),
        (
            {"messages": [USER, {"role": "assistant", "tool_calls": [call("c", "f", "[1, 2]")]}]},
            "messages[1].tool_calls[0].function.arguments",
            "JSON object",
        ),
        (
            {"messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
            "tool_call_id",
        ),
        (
            {"messages": [{"role": "function", "name": "f", "content": "x"}]},
            "messages[0].role",
            "not supported",
        ),
        ({"messages": [{"role": "system", "content": "only rules"}]}, "messages", "at least one"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}
                ]
            },
            "messages[0].content[0].type",
            "input_audio",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
            "https URL",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png,raw"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
            "base64 data URL",
        ),
        (
            {"tools": [{"type": "custom", "custom": {"name": "x"}}]},
            "tools[0].type",
            "function tools",
        ),
        (
            {"tools": [WEATHER_TOOL], "tool_choice": {"type": "mystery"}},
            "tool_choice",
            "tool_choice",
        ),
        ({"functions": [{"name": "f"}]}, "functions", "use 'tools'"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema",
            "schema",
        ),
    ],
)
def test_invalid_requests_name_the_field(fields: dict[str, Any], param: str, fragment: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        translate(**fields)
    assert caught.value.status == 400
    assert caught.value.type == "invalid_request_error"
    assert caught.value.param == param
    assert fragment in caught.value.message


def test_deeply_nested_tool_arguments_are_a_400_not_a_failed_encoding() -> None:
    """The arguments string is parsed and encoded again: orjson stops at 254 levels."""
    arguments = '{"a": ' + "[" * 300 + "]" * 300 + "}"
    with pytest.raises(InvalidRequestError) as caught:
        translate(messages=[USER, {"role": "assistant", "tool_calls": [call("c", "f", arguments)]}])
    assert caught.value.status == 400
    assert str(caught.value.param).startswith("messages[1].tool_calls[0].function.arguments.a")
    assert "nested too deeply" in caught.value.message
    ok = '{"a": ' + "[" * 63 + "]" * 63 + "}"  # 64 levels
    translate(messages=[USER, {"role": "assistant", "tool_calls": [call("c", "f", ok)]}])

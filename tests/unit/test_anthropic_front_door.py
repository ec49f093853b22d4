"""The Anthropic front door's pure parts: request translation, response and stream encoding."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gatewise.core.errors import (
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    RateLimitError,
    UpstreamError,
)
from gatewise.core.types import (
    ChatResponse,
    Choice,
    FunctionCall,
    Message,
    ResponseMessage,
    ToolCall,
    Usage,
)
from gatewise.http.anthropic_request import parse_request
from gatewise.http.anthropic_response import (
    encode_message,
    error_body,
    error_type,
    message_id,
    tool_input,
)

PNG = "iVBORw0KGgo="


def translate(native: bool = False, **fields: Any) -> Any:
    body = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    body.update(fields)
    return parse_request(body, native=native)


def bad(expected_param: str, **fields: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        translate(**fields)
    assert info.value.param == expected_param, info.value.message
    assert info.value.message.startswith(expected_param + ":")
    return info.value


# --- request translation -----------------------------------------------------------


def test_plain_request_maps_sampling_fields() -> None:
    chat = translate(
        temperature=0.5,
        top_p=0.9,
        stop_sequences=["END", "STOP"],
        metadata={"user_id": "u-1"},
        stream=True,
    ).chat
    assert chat.model == "m"
    assert chat.max_tokens == 64
    assert (chat.temperature, chat.top_p, chat.stop, chat.user) == (
        0.5,
        0.9,
        ["END", "STOP"],
        "u-1",
    )
    assert chat.stream is True
    assert chat.stream_options is not None and chat.stream_options.include_usage is True
    assert chat.messages == [Message(role="user", content="hi")]


def test_system_string_and_blocks() -> None:
    chat = translate(system="be brief").chat
    assert chat.messages[0] == Message(role="system", content="be brief")
    blocks = [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two", "cache_control": {"type": "ephemeral"}},
    ]
    chat = translate(system=blocks).chat
    assert chat.messages[0].role == "system"
    # block boundaries survive; cache_control is dropped for OpenAI-family routes
    assert chat.messages[0].content == [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two"},
    ]
    native = translate(native=True, system=blocks).chat
    assert native.messages[0].content[1]["cache_control"] == {"type": "ephemeral"}  # type: ignore[index]


def test_empty_content_is_kept_as_empty_text() -> None:
    chat = translate(
        messages=[
            {"role": "user", "content": ""},
            {"role": "assistant", "content": []},
            {"role": "user", "content": []},
        ]
    ).chat
    assert [m.content for m in chat.messages] == ["", "", ""]


def test_unicode_text_and_image_sources() -> None:
    content = [
        {"type": "text", "text": "Größe? 日本語 🙂"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    chat = translate(messages=[{"role": "user", "content": content}]).chat
    assert chat.messages[0].content == [
        {"type": "text", "text": "Größe? 日本語 🙂"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]


def test_documents_become_file_or_text_parts() -> None:
    content = [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
            "title": "a.pdf",
        },
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "plain words"},
        },
    ]
    parts = translate(messages=[{"role": "user", "content": content}]).chat.messages[0].content
    assert parts[0] == {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
    }
    assert parts[1] == {"type": "text", "text": "plain words"}


def test_parallel_tool_use_and_results_round_trip() -> None:
    messages = [
        {"role": "user", "content": "weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_A",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_B",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_A", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_B",
                    "content": [{"type": "text", "text": "4C"}],
                    "is_error": False,
                },
                {"type": "text", "text": "Thanks!"},
            ],
        },
    ]
    chat = translate(messages=messages).chat
    roles = [m.role for m in chat.messages]
    assert roles == ["user", "assistant", "tool", "tool", "user"]
    assistant = chat.messages[1]
    assert assistant.content == "Checking."
    # the thinking block is kept as sent, for an Anthropic upstream to get it back
    assert assistant.extra["thinking_blocks"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    ]
    assert assistant.tool_calls == [
        ToolCall(id="toolu_A", function=FunctionCall("get_weather", '{"city":"Paris"}')),
        ToolCall(id="toolu_B", function=FunctionCall("get_weather", '{"city":"Oslo"}')),
    ]
    assert (chat.messages[2].tool_call_id, chat.messages[2].content) == ("toolu_A", "18C")
    assert (chat.messages[3].tool_call_id, chat.messages[3].content) == ("toolu_B", "4C")
    assert chat.messages[4].content == "Thanks!"


def test_tool_result_error_and_images() -> None:
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_X",
        "is_error": True,
        "content": [
            {"type": "text", "text": "camera offline"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        ],
    }
    chat = translate(messages=[{"role": "user", "content": [result]}]).chat
    tool, user = chat.messages
    # OpenAI tool messages hold text only: the error is written into it ...
    assert tool.role == "tool"
    assert tool.content == "Error: camera offline"
    # ... and the image follows in a user message that says where it came from
    assert user.role == "user"
    assert user.content == [
        {"type": "text", "text": "Images returned by tool call toolu_X:"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    # Anthropic upstreams get the flag and keep the image in the result
    native = translate(native=True, messages=[{"role": "user", "content": [result]}]).chat
    assert len(native.messages) == 1
    assert native.messages[0].extra == {"is_error": True}
    assert native.messages[0].content[1]["type"] == "image_url"  # type: ignore[index]


def test_tools_and_tool_choice() -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {}},
            "strict": True,
        }
    ]
    chat = translate(
        tools=tools,
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    ).chat
    assert chat.tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {}},
                "strict": True,
            },
        }
    ]
    assert chat.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    assert chat.parallel_tool_calls is False
    assert translate(tools=tools, tool_choice={"type": "any"}).chat.tool_choice == "required"
    assert translate(tools=tools, tool_choice={"type": "auto"}).chat.tool_choice == "auto"
    assert translate(tools=tools, tool_choice={"type": "none"}).chat.tool_choice == "none"
    assert translate(tools=tools).chat.parallel_tool_calls is None


def test_native_parameters_only_reach_anthropic_routes() -> None:
    fields = {
        "top_k": 5,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "output_config": {
            "effort": "high",
            "format": {"type": "json_schema", "schema": {"type": "object"}},
        },
        "service_tier": "auto",
    }
    openai_route = translate(**fields)
    assert openai_route.chat.extra == {}
    assert sorted(openai_route.dropped) == [
        "output_config.effort",
        "service_tier",
        "thinking",
        "top_k",
    ]
    assert openai_route.chat.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}},
    }
    native = translate(native=True, **fields)
    assert native.dropped == []
    assert native.chat.extra == {
        "top_k": 5,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "service_tier": "auto",
        "output_config": {"effort": "high"},
    }


@pytest.mark.parametrize(
    ("param", "fields"),
    [
        ("max_tokens", {"max_tokens": None}),
        ("max_tokens", {"max_tokens": 0}),
        ("max_tokens", {"max_tokens": "ten"}),
        ("messages", {"messages": []}),
        ("messages.0.role", {"messages": [{"role": "robot", "content": "x"}]}),
        ("messages.0.content", {"messages": [{"role": "user"}]}),
        ("temperature", {"temperature": 1.5}),
        ("tools.0.type", {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        ("tools.0.input_schema", {"tools": [{"name": "t"}]}),
        (
            "tool_choice.name",
            {"tools": [{"name": "t", "input_schema": {}}], "tool_choice": {"type": "tool"}},
        ),
        (
            "messages.0.content.0.source.type",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            },
        ),
        (
            "messages.0.content.0.tool_use_id",
            {"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
        ),
        (
            "messages.0.content.0.type",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}],
                    }
                ]
            },
        ),
        (
            "messages.0.content.0.type",
            {"messages": [{"role": "assistant", "content": [{"type": "server_tool_use"}]}]},
        ),
        (
            "messages.0.content.0.input",
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "n", "input": [1]}],
                    }
                ]
            },
        ),
    ],
)
def test_invalid_requests_name_the_field(param: str, fields: dict[str, Any]) -> None:
    assert bad(param, **fields).status == 400


def test_missing_max_tokens_is_named() -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_request({"model": "m", "messages": [{"role": "user", "content": "x"}]}, native=False)
    assert info.value.message == "max_tokens: Field required"


def test_count_only_needs_no_max_tokens() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert parse_request(body, native=False, count_only=True).chat.max_tokens is None


# --- responses and errors ----------------------------------------------------------


def test_response_with_text_and_tool_calls() -> None:
    calls = [
        ToolCall(id="call_1", function=FunctionCall("f", '{"a": 1}')),
        ToolCall(id="call_2", function=FunctionCall("g", "not json")),
    ]
    response = ChatResponse(
        id="chatcmpl-1",
        model="upstream-name",
        choices=[
            Choice(0, ResponseMessage(content="Let me check.", tool_calls=calls), "tool_calls")
        ],
        usage=Usage(
            prompt_tokens=30,
            completion_tokens=7,
            total_tokens=37,
            prompt_tokens_details={"cached_tokens": 10},
        ),
    )
    body = orjson.loads(encode_message(response, "public-name", "msg_1"))
    assert body == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "public-name",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
            {"type": "tool_use", "id": "call_2", "name": "g", "input": {"_raw": "not json"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 20,
            "output_tokens": 7,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 10,
        },
    }


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("tool_calls", "tool_use"),
        (None, "end_turn"),
    ],
)
def test_stop_reasons(finish: str | None, expected: str) -> None:
    response = ChatResponse(choices=[Choice(0, ResponseMessage(content="x"), finish)])
    assert orjson.loads(encode_message(response, "m", "msg_x"))["stop_reason"] == expected


def test_tool_input_edge_cases() -> None:
    assert tool_input("") == {}
    assert tool_input(None) == {}
    assert tool_input("[1, 2]") == {"_raw": "[1, 2]"}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InvalidRequestError("bad"), "invalid_request_error"),
        (ModelNotFoundError("m"), "not_found_error"),
        (RateLimitError("slow down"), "rate_limit_error"),
        (UpstreamError("busy", status=529, type="server_error"), "overloaded_error"),
        (UpstreamError("busy", status=500, type="server_error"), "api_error"),
        (UpstreamError("over", status=200, type="overloaded_error"), "overloaded_error"),
        (GatewayError("internal"), "api_error"),
    ],
)
def test_error_types(error: GatewayError, expected: str) -> None:
    assert error_type(error) == expected
    body = orjson.loads(error_body(error, "req_1"))
    assert body == {
        "type": "error",
        "error": {"type": expected, "message": error.message},
        "request_id": "req_1",
    }


def test_message_id_follows_request_id() -> None:
    assert message_id("req_abc123") == "msg_abc123"
    assert message_id("client-id-7") == "msg_client-id-7"

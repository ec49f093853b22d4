"""Responses API <-> canonical chat: request translation, output building, stream encoding."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from gatewise.core.errors import InvalidRequestError
from gatewise.core.types import (
    ChatChunk,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gatewise.http.asgi import HTTPRequest
from gatewise.http.responses_ids import ResponseIds, owner_key, response_id_of_item
from gatewise.http.responses_items import items_to_messages, normalize_input
from gatewise.http.responses_output import finish, new_response, output_items, responses_usage
from gatewise.http.responses_request import parse_responses_request
from gatewise.http.responses_stream import ResponseStreamEncoder
from gatewise.identity.principal import Principal
from gatewise.identity.roles import Role
from gatewise.policies.auth import anonymous, presented_credential


def parse(**fields: Any) -> Any:
    return parse_responses_request({"model": "m", "input": "hi", **fields})


def invalid(**fields: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        parse_responses_request(fields)
    return caught.value


# --- requests ------------------------------------------------------------------------------


def test_parameters_map_onto_chat() -> None:
    request = parse(
        max_output_tokens=64,
        temperature=0.5,
        top_p=0.9,
        user="u-1",
        reasoning={"effort": "low", "summary": "auto"},
        text={"format": {"type": "json_object"}, "verbosity": "low"},
        include=["reasoning.encrypted_content"],
        truncation="auto",
        metadata={"k": "v"},
        stream=True,
        top_k=5,
    )
    chat = request.chat
    assert (chat.max_completion_tokens, chat.temperature, chat.top_p, chat.user) == (
        64,
        0.5,
        0.9,
        "u-1",
    )
    assert chat.response_format == {"type": "json_object"}
    assert chat.stream is True and chat.wants_usage_in_stream
    assert chat.extra == {"top_k": 5, "verbosity": "low", "reasoning_effort": "low"}
    assert request.echo["metadata"] == {"k": "v"} and request.echo["truncation"] == "auto"
    assert request.echo["reasoning"] == {"effort": "low", "summary": "auto"}
    assert request.store is True and request.stream is True
    assert "input" not in request.record and request.record["top_k"] == 5


def test_defaults_are_echoed() -> None:
    echo = parse().echo
    assert echo["tool_choice"] == "auto" and echo["tools"] == []
    assert echo["temperature"] == 1.0 and echo["top_p"] == 1.0
    assert echo["parallel_tool_calls"] is True and echo["store"] is True
    assert echo["text"] == {"format": {"type": "text"}} and echo["truncation"] == "disabled"


def test_flat_function_tools_become_chat_tools() -> None:
    tool = {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}
    request = parse(
        tools=[tool], tool_choice={"type": "function", "name": "f"}, parallel_tool_calls=False
    )
    assert request.chat.tools == [
        {
            "type": "function",
            "function": {"name": "f", "parameters": {"type": "object"}, "strict": True},
        }
    ]
    assert request.chat.tool_choice == {"type": "function", "function": {"name": "f"}}
    assert request.chat.parallel_tool_calls is False
    assert request.echo["tools"] == [tool]
    allowed = parse(
        tools=[tool],
        tool_choice={
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "function", "name": "f"}],
        },
    )
    assert allowed.chat.tool_choice == {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "f"}}],
        },
    }


def test_tool_options_are_not_sent_without_tools() -> None:
    chat = parse(tool_choice="none", parallel_tool_calls=True).chat
    assert chat.tool_choice is None and chat.parallel_tool_calls is None


def test_json_schema_is_nested_for_chat() -> None:
    spec = {"type": "json_schema", "name": "r", "schema": {"type": "object"}, "description": "d"}
    assert parse(text={"format": spec}).chat.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "r", "schema": {"type": "object"}, "description": "d"},
    }
    assert parse(text={"format": {"type": "text"}}).chat.response_format is None


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": 3, "input": "x"}, "model"),
        ({"model": "m", "input": 3}, "input"),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "input": "x", "max_output_tokens": True}, "max_output_tokens"),
        ({"model": "m", "input": "x", "stream": "yes"}, "stream"),
        ({"model": "m", "input": "x", "background": True}, "background"),
        ({"model": "m", "input": "x", "prompt": {"id": "p"}}, "prompt"),
        ({"model": "m", "input": "x", "tools": [{"type": "code_interpreter"}]}, "tools"),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "m", "input": "x", "tool_choice": {"type": "web_search"}}, "tool_choice"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format"),
        ({"model": "m", "input": "x", "truncation": "middle"}, "truncation"),
        ({"model": "m", "input": "x", "metadata": {"k": 1}}, "metadata"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"role": "user", "content": 5}]}, "input[0].content"),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        ({"model": "m", "input": [{"type": "item_reference"}]}, "input[0].id"),
        (
            {
                "model": "m",
                "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}],
            },
            "input[0].content[0]",
        ),
        (
            {"model": "m", "input": [{"role": "assistant", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].type",
        ),
        ({"model": "m", "input": ["text"]}, "input[0]"),
    ],
)
def test_invalid_requests_name_the_parameter(fields: dict[str, Any], param: str) -> None:
    assert invalid(**fields).param == param


def test_built_in_tools_are_named() -> None:
    error = invalid(model="m", input="x", tools=[{"type": "web_search"}, {"type": "mcp"}])
    assert "web_search, mcp" in error.message


# --- items -> messages -----------------------------------------------------------------------


def test_items_become_chat_messages() -> None:
    items = normalize_input(
        [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "a"},
                    {"type": "input_file", "file_data": "ZGF0YQ==", "filename": "f.txt"},
                ],
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "thinking"}],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"x":1}'},
            {"type": "reasoning", "summary": []},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "two"}],
            },
            {"type": "function_call", "call_id": "c3", "name": "h", "arguments": ""},
        ]
    )
    messages = items_to_messages(items)
    assert [m.role for m in messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    assert messages[0].content == "sys"
    assert messages[1].content == [
        {"type": "text", "text": "a"},
        {"type": "file", "file": {"file_data": "ZGF0YQ==", "filename": "f.txt"}},
    ]
    # The assistant's text and its two calls are one chat message.
    assert messages[2].content == "thinking"
    assert [(c.id, c.function.name) for c in messages[2].tool_calls or []] == [
        ("c1", "f"),
        ("c2", "g"),
    ]
    assert (messages[3].tool_call_id, messages[3].content) == ("c1", "one")
    assert (messages[4].tool_call_id, messages[4].content) == ("c2", "two")
    assert messages[5].content is None and messages[5].tool_calls is not None


def test_string_input_is_normalized_once() -> None:
    [item] = normalize_input("hello")
    assert item == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "hello"}],
    }
    assert items_to_messages([item])[0].content == "hello"
    [assistant] = normalize_input([{"role": "assistant", "content": "no", "id": "msg_1"}])
    assert (
        assistant["content"] == [{"type": "output_text", "text": "no"}]
        and assistant["id"] == "msg_1"
    )


# --- ids and owners -----------------------------------------------------------------------------


def test_item_ids_lead_back_to_their_response() -> None:
    ids = ResponseIds()
    first, second = ids.item("message"), ids.item("function_call")
    assert first.startswith("msg_") and second.startswith("fc_") and first != second
    assert response_id_of_item(first) == response_id_of_item(second) == ids.response_id
    for foreign in ("msg_abc", "fc_" + "z" * 50, "nounderscore", "msg_" + "a" * 48):
        assert response_id_of_item(foreign) is None


def make_request(headers: list[tuple[bytes, bytes]]) -> HTTPRequest:
    scope = {"type": "http", "method": "POST", "path": "/v1/responses", "headers": headers}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    return HTTPRequest(scope, receive)


def test_owner_key_is_the_callers_owner() -> None:
    def owner_for(headers: list[tuple[bytes, bytes]]) -> str:
        request = make_request(headers)
        request.principal = anonymous(presented_credential(request.headers))
        return owner_key(request)

    digest = hashlib.sha256(b"sk-client").hexdigest()
    assert owner_for([(b"authorization", b"Bearer sk-client")]) == digest
    assert owner_for([(b"x-api-key", b"sk-client")]) == digest
    assert owner_for([(b"api-key", b"sk-client")]) == digest
    assert owner_for([(b"authorization", b"Bearer other")]) != digest
    assert owner_for([]) == "anonymous"
    assert owner_for([(b"authorization", b"Bearer ")]) == "anonymous"
    keyed = make_request([])
    keyed.principal = Principal(kind="key", name="key:k", role=Role.CONSUMER, owner="app_1")
    assert owner_key(keyed) == "app_1"


# --- output ---------------------------------------------------------------------------------------


def test_usage_uses_the_responses_names() -> None:
    usage = Usage(
        prompt_tokens=10,
        completion_tokens=5,
        total_tokens=15,
        prompt_tokens_details={"cached_tokens": 4},
        completion_tokens_details={"reasoning_tokens": 2},
    )
    assert responses_usage(usage) == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 15,
    }
    assert responses_usage(None) is None


def test_chat_response_becomes_output_items() -> None:
    ids = ResponseIds()
    call = ToolCall(id="call_1", function=FunctionCall("f", '{"a":1}'))
    chat = ChatResponse(
        choices=[
            Choice(0, ResponseMessage(content="Let me check.", tool_calls=[call]), "tool_calls")
        ],
        usage=Usage(1, 2, 3),
    )
    response = finish(
        new_response(ids, {"model": "m"}, 100), output_items(chat, ids), "tool_calls", chat.usage
    )
    assert response["status"] == "completed" and response["completed_at"] >= 100
    message, function_call = response["output"]
    assert message["type"] == "message" and message["content"][0]["text"] == "Let me check."
    assert function_call == {
        "id": function_call["id"],
        "type": "function_call",
        "status": "completed",
        "call_id": "call_1",
        "name": "f",
        "arguments": '{"a":1}',
    }
    truncated = ChatResponse(choices=[Choice(0, ResponseMessage(content="cut"), "length")])
    incomplete = finish(new_response(ids, {}, 1), output_items(truncated, ids), "length", None)
    assert incomplete["status"] == "incomplete"
    assert incomplete["incomplete_details"] == {"reason": "max_output_tokens"}
    assert incomplete["output"][0]["status"] == "incomplete"


# --- stream encoding --------------------------------------------------------------------------------


def chunk(delta: Delta, finish_reason: str | None = None) -> ChatChunk:
    return ChatChunk(choices=[ChunkChoice(0, delta, finish_reason)])


def decode(data: bytes) -> list[dict[str, Any]]:
    events = []
    for block in data.split(b"\n\n"):
        if block:
            name, payload = block.split(b"\n", 1)
            event = orjson.loads(payload.removeprefix(b"data: "))
            assert name == b"event: " + event["type"].encode()
            events.append(event)
    return events


def encoder() -> ResponseStreamEncoder:
    ids = ResponseIds()
    return ResponseStreamEncoder(new_response(ids, {"model": "m"}, 1), ids)


def test_text_then_tool_calls_stream() -> None:
    stream = encoder()
    data = stream.start()
    data += stream.feed(
        [
            chunk(Delta(role="assistant", content="")),
            chunk(Delta(content="Hel")),
            chunk(Delta(content="lo")),
            chunk(
                Delta(tool_calls=[ToolCallDelta(0, "c1", "function", FunctionCall("f", '{"a"'))])
            ),
            chunk(Delta(tool_calls=[ToolCallDelta(0, function=FunctionCall(arguments=":1}"))])),
            chunk(Delta(tool_calls=[ToolCallDelta(1, "c2", "function", FunctionCall("g", "{}"))])),
        ]
    )
    data += stream.feed([chunk(Delta(), "tool_calls"), ChatChunk(usage=Usage(3, 4, 7))])
    data += stream.finish()
    events = decode(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert (
        events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    )
    assert events[6]["text"] == "Hello"
    assert events[12]["arguments"] == '{"a":1}' and events[12]["name"] == "f"
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == [
        "message",
        "function_call",
        "function_call",
    ]
    assert [item.get("call_id") for item in final["output"]] == [None, "c1", "c2"]
    assert [
        item["output_index"] for item in events if item["type"] == "response.output_item.added"
    ] == [0, 1, 2]
    assert final["usage"]["total_tokens"] == 7 and final["status"] == "completed"


def test_empty_and_truncated_streams() -> None:
    stream = encoder()
    stream.start()
    stream.feed([chunk(Delta(role="assistant", content=""), "length")])
    events = decode(stream.finish())
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-1]["response"]["output"][0]["content"] == [
        {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    ]


def test_refusal_gets_its_own_part() -> None:
    stream = encoder()
    stream.start()
    events = decode(stream.feed([chunk(Delta(refusal="No."))]) + stream.finish())
    types = [e["type"] for e in events]
    assert "response.refusal.delta" in types and "response.refusal.done" in types
    assert events[-1]["response"]["output"][0]["content"] == [{"type": "refusal", "refusal": "No."}]


def test_failure_mid_stream() -> None:
    stream = encoder()
    stream.start()
    stream.feed([chunk(Delta(content="partial"))])
    events = decode(stream.fail("server_error", "upstream_unavailable", "The upstream broke."))
    assert [e["type"] for e in events] == ["error", "response.failed"]
    assert (
        events[0]["code"] == "upstream_unavailable"
        and events[0]["message"] == "The upstream broke."
    )
    failed = events[1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": "The upstream broke."}
    assert failed["output"][0]["content"][0]["text"] == "partial"
    assert failed["output"][0]["status"] == "incomplete"

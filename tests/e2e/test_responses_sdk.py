"""The official openai SDK's Responses API against the gateway (OpenAI fake and mock upstreams)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from gatewise.testing import FakeOpenAIUpstream, Scenario
from gatewise.testing.gateway import RunningGateway
from tests.rawhttp import post, request

MODEL = "gpt-4o-mini"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.openai_base_url, api_key="alice-key", max_retries=0)


@pytest.fixture
def other_client(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.openai_base_url, api_key="bob-key", max_retries=0)


def sent(upstream: FakeOpenAIUpstream) -> dict[str, Any]:
    body: dict[str, Any] = upstream.requests[-1].json
    return body


def roles_and_text(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content")) for m in messages]


# --- create ---------------------------------------------------------------------------


def test_create_with_string_input(client: openai.OpenAI, upstream: FakeOpenAIUpstream) -> None:
    response = client.responses.create(
        model=MODEL,
        input="Hello gateway",
        instructions="Answer briefly.",
        max_output_tokens=50,
        temperature=0.3,
        metadata={"ticket": "T-1"},
    )
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.model == MODEL
    assert response.output_text == "Echo: Hello gateway"
    message = response.output[0]
    assert message.type == "message" and message.id.startswith("msg_")
    assert message.content[0].type == "output_text"
    # Echoed request parameters.
    assert (response.instructions, response.max_output_tokens, response.temperature) == (
        "Answer briefly.",
        50,
        0.3,
    )
    assert response.metadata == {"ticket": "T-1"} and response.store is True
    assert response.tool_choice == "auto" and response.tools == []
    # Usage under the Responses names equals what the upstream reported.
    body = sent(upstream)
    assert response.usage is not None
    assert (
        response.usage.input_tokens == 4
    )  # the fake counts words: "Answer briefly." + "Hello gateway"
    assert response.usage.output_tokens == 3
    assert response.usage.total_tokens == 7
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    # What went upstream: chat semantics.
    assert roles_and_text(body["messages"]) == [
        ("system", "Answer briefly."),
        ("user", "Hello gateway"),
    ]
    assert body["max_completion_tokens"] == 50 and body["temperature"] == 0.3
    assert "metadata" not in body and "store" not in body and "input" not in body


def test_create_with_item_input(client: openai.OpenAI, upstream: FakeOpenAIUpstream) -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    response = client.responses.create(
        model=MODEL,
        input=[
            {"role": "developer", "content": "Be exact."},
            {"type": "message", "role": "assistant", "content": "Earlier answer."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in"},
                    {"type": "input_image", "image_url": image, "detail": "low"},
                ],
            },
        ],
    )
    assert response.output_text == "Echo: What is in"
    assert sent(upstream)["messages"] == [
        {"role": "developer", "content": "Be exact."},
        {"role": "assistant", "content": "Earlier answer."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in"},
                {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
            ],
        },
    ]


def test_json_schema_format_and_vendor_fields(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    response = client.responses.create(
        model=MODEL,
        input="x",
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema, "strict": True}},
        extra_body={"top_k": 3},
    )
    assert json.loads(response.output_text) == {"answer": "fake"}
    body = sent(upstream)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": True},
    }
    assert body["top_k"] == 3


def test_length_limit_gives_an_incomplete_response(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    response = client.responses.create(
        model=MODEL, input="one two three four five six", max_output_tokens=2
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "Echo: one"


def test_mock_provider_serves_the_responses_api(client: openai.OpenAI) -> None:
    response = client.responses.create(model="mock-gpt", input="ping")
    assert response.output_text == "Mock reply to: ping"
    with client.responses.stream(model="mock-gpt", input="pong") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Mock reply to: pong"
    assert final.usage is not None and final.usage.output_tokens > 0


# --- streaming ------------------------------------------------------------------------

TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def dedupe(types: list[str]) -> list[str]:
    """Event types with runs of the same type collapsed (deltas repeat)."""
    return [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]


def test_stream_events_in_order(client: openai.OpenAI, upstream: FakeOpenAIUpstream) -> None:
    upstream.script(Scenario(chunks=4))
    events = list(client.responses.create(model=MODEL, input="Stream this please", stream=True))
    types = [e.type for e in events]
    assert dedupe(types) == TEXT_EVENTS
    assert types.count("response.output_text.delta") >= 2
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(set(numbers)) and numbers[0] == 0
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Echo: Stream this please"
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == text
    created, completed = events[0], events[-1]
    assert created.response.status == "in_progress" and created.response.usage is None
    assert completed.response.id == created.response.id
    assert completed.response.status == "completed"
    assert completed.response.output[0].content[0].text == text
    usage = completed.response.usage
    assert usage is not None and usage.output_tokens == 4 and usage.total_tokens > 4
    assert sent(upstream)["stream_options"] == {"include_usage": True}


def test_stream_wire_format_has_event_lines_and_no_done(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    reply = post(
        gateway.openai_base_url + "/responses",
        {"model": MODEL, "input": "hi", "stream": True},
        headers={"authorization": "Bearer alice-key"},
    )
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/event-stream")
    events = [e for e in reply.body.split(b"\n\n") if e]
    for event in events:
        name, data = event.split(b"\n")
        assert name.startswith(b"event: ") and data.startswith(b"data: ")
        assert json.loads(data[6:])["type"] == name[7:].decode()
    assert events[-1].startswith(b"event: response.completed")
    assert b"[DONE]" not in reply.body


def test_stream_helper_builds_the_final_response(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    with client.responses.stream(model=MODEL, input="hello there") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "Echo: hello there"
    assert client.responses.retrieve(final.id).output_text == "Echo: hello there"


def test_mid_stream_failure_ends_with_response_failed(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(reset_after=3, chunks=10))
    events = list(client.responses.create(model=MODEL, input="a b c d e f", stream=True))
    types = [e.type for e in events]
    assert types[-2:] == ["error", "response.failed"]
    assert "response.completed" not in types
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "server_error"
    assert events[-2].code == "upstream_unavailable"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(failed.id)  # failed responses are not stored


# --- function calls -----------------------------------------------------------------


def test_function_call_round_trip(client: openai.OpenAI, upstream: FakeOpenAIUpstream) -> None:
    first = client.responses.create(
        model=MODEL,
        input="Weather in Paris?",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
    )
    body = sent(upstream)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": WEATHER_TOOL["parameters"],
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    [call] = first.output
    assert call.type == "function_call" and call.id.startswith("fc_")
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "fake"}
    assert first.tools[0].name == "get_weather"  # echoed in the Responses shape

    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C, sunny"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert second.output_text == "Tool result: 18C, sunny"
    messages = sent(upstream)["messages"]
    assert messages[0] == {"role": "user", "content": "Weather in Paris?"}
    assert messages[1]["role"] == "assistant"
    assert messages[1]["tool_calls"] == [
        {
            "id": call.call_id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": call.arguments},
        }
    ]
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "18C, sunny"}


def test_stateless_round_trip_with_output_items_sent_back(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    """The SDK pattern without server state: ``input += response.output``."""
    history: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.responses.create(
        model=MODEL,
        input=history,
        tools=[WEATHER_TOOL],
        store=False,  # type: ignore[list-item]
    )
    [call] = first.output
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "-3C"})  # type: ignore[union-attr]
    second = client.responses.create(model=MODEL, input=history, tools=[WEATHER_TOOL], store=False)  # type: ignore[list-item]
    assert second.output_text == "Tool result: -3C"
    assert [m["role"] for m in sent(upstream)["messages"]] == ["user", "assistant", "tool"]


def test_streamed_function_call_events(client: openai.OpenAI, upstream: FakeOpenAIUpstream) -> None:
    events = list(
        client.responses.create(
            model=MODEL,
            input="Weather?",
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            stream=True,
        )
    )
    types = dedupe([e.type for e in events])
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added = events[2]
    assert added.item.type == "function_call" and added.item.name == "get_weather"
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(done.arguments) == {"city": "fake"} and deltas == done.arguments
    final = events[-1].response.output[0]
    assert final.type == "function_call" and final.call_id == added.item.call_id


# --- conversation state ---------------------------------------------------------------


def test_previous_response_id_over_three_turns(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    one = client.responses.create(model=MODEL, input="My name is Ada", instructions="Be kind.")
    assert roles_and_text(sent(upstream)["messages"]) == [
        ("system", "Be kind."),
        ("user", "My name is Ada"),
    ]
    two = client.responses.create(model=MODEL, input="I like tea", previous_response_id=one.id)
    # Instructions are not carried over; the earlier turns are.
    assert roles_and_text(sent(upstream)["messages"]) == [
        ("user", "My name is Ada"),
        ("assistant", "Echo: My name is Ada"),
        ("user", "I like tea"),
    ]
    three = client.responses.create(
        model=MODEL,
        input="What is my name?",
        previous_response_id=two.id,
        instructions="Be brief.",
        stream=True,
    )
    completed = list(three)[-1]
    assert completed.type == "response.completed"
    assert completed.response.previous_response_id == two.id
    assert roles_and_text(sent(upstream)["messages"]) == [
        ("system", "Be brief."),
        ("user", "My name is Ada"),
        ("assistant", "Echo: My name is Ada"),
        ("user", "I like tea"),
        ("assistant", "Echo: I like tea"),
        ("user", "What is my name?"),
    ]
    four = client.responses.create(
        model=MODEL, input="And now?", previous_response_id=completed.response.id
    )
    assert len(sent(upstream)["messages"]) == 7 and four.previous_response_id is not None


def test_retrieve_and_input_items(client: openai.OpenAI) -> None:
    created = client.responses.create(
        model=MODEL,
        input=[{"role": "user", "content": "first"}, {"role": "user", "content": "second"}],
    )
    retrieved = client.responses.retrieve(created.id)
    assert retrieved.model_dump() == created.model_dump()
    items = list(client.responses.input_items.list(created.id, order="asc"))
    assert [i.content[0].text for i in items] == ["first", "second"]  # type: ignore[union-attr]
    assert all(i.id.startswith("msg_") for i in items)
    newest_first = client.responses.input_items.list(created.id, limit=1)
    assert [i.content[0].text for i in newest_first.data] == ["second"]  # type: ignore[union-attr]
    assert newest_first.has_more is True


def test_item_reference_resolves_from_the_store(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    earlier = client.responses.create(model=MODEL, input="remember this")
    client.responses.create(
        model=MODEL,
        input=[
            {"type": "item_reference", "id": earlier.output[0].id},
            {"role": "user", "content": "and this"},
        ],
    )
    assert roles_and_text(sent(upstream)["messages"]) == [
        ("assistant", "Echo: remember this"),
        ("user", "and this"),
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input=[{"type": "item_reference", "id": "msg_nope"}])
    assert caught.value.body["param"] == "input[0].id"  # type: ignore[index]


def test_delete(client: openai.OpenAI) -> None:
    created = client.responses.create(model=MODEL, input="temporary")
    reply = client.responses.with_raw_response.delete(created.id)
    assert reply.http_response.json() == {"id": created.id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="more", previous_response_id=created.id)


def test_store_false_is_not_persisted(client: openai.OpenAI, upstream: FakeOpenAIUpstream) -> None:
    created = client.responses.create(model=MODEL, input="ephemeral", store=False)
    assert created.store is False and created.output_text == "Echo: ephemeral"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    calls = len(upstream.requests)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=MODEL, input="next", previous_response_id=created.id)
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert len(upstream.requests) == calls  # refused before any upstream call


def test_another_credential_cannot_see_delete_or_continue(
    client: openai.OpenAI, other_client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    mine = client.responses.create(model=MODEL, input="private")
    with pytest.raises(openai.NotFoundError):
        other_client.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other_client.responses.input_items.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        other_client.responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError):
        other_client.responses.create(model=MODEL, input="x", previous_response_id=mine.id)
    with pytest.raises(openai.BadRequestError):
        other_client.responses.create(
            model=MODEL, input=[{"type": "item_reference", "id": mine.output[0].id}]
        )
    # Still the owner's, untouched; the same key in another header is the same owner.
    assert client.responses.retrieve(mine.id).output_text == "Echo: private"
    reply = request(
        "GET", f"{client.base_url}responses/{mine.id}", headers={"x-api-key": "alice-key"}
    )
    assert reply.status == 200 and reply.json["id"] == mine.id


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({"input": "x"}, "model", "model"),
        ({"model": MODEL}, "input", "input"),
        ({"model": MODEL, "input": "x", "background": True}, "background", "Background"),
        (
            {
                "model": MODEL,
                "input": "x",
                "tools": [{"type": "web_search"}, {"type": "file_search"}],
            },
            "tools",
            "web_search, file_search",
        ),
        ({"model": MODEL, "input": "x", "temperature": "hot"}, "temperature", "number"),
        ({"model": MODEL, "input": [{"type": "computer_call"}]}, "input[0].type", "computer_call"),
        ({"model": MODEL, "input": "x", "conversation": "conv_1"}, "conversation", "Conversations"),
    ],
)
def test_invalid_requests_get_openai_400s(
    gateway: RunningGateway, body: dict[str, Any], param: str, needle: str
) -> None:
    reply = post(gateway.openai_base_url + "/responses", body)
    assert reply.status == 400
    error = reply.json["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert needle in error["message"]


def test_unknown_ids_and_routes_are_404s(gateway: RunningGateway) -> None:
    base = gateway.openai_base_url + "/responses/"
    for method, path in [
        ("GET", "resp_unknown"),
        ("DELETE", "resp_unknown"),
        ("GET", "resp_unknown/input_items"),
        ("GET", "resp_unknown/other"),
    ]:
        reply = request(method, base + path)
        assert reply.status == 404, (method, path)
        assert reply.json["error"]["type"] == "invalid_request_error"
    assert request("PUT", base + "resp_x").status == 405


def test_upstream_errors_keep_their_status(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(status=429, retry_after=1))
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model=MODEL, input="x")
    assert caught.value.response.headers["retry-after"] == "1"
    upstream.script(Scenario(status=503))
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model=MODEL, input="x", stream=True)
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="no-such-model", input="x")
    assert missing.value.code == "model_not_found"

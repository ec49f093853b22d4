"""Anthropic Messages -> canonical: responses, upstream errors and streams (``anthropic`` provider)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gatewise.core.errors import GatewayError, UpstreamProtocolError
from gatewise.core.types import ChatChunk
from gatewise.formats import openai as openai_wire
from gatewise.providers.anthropic_response import decode_message, error_from_response
from gatewise.providers.anthropic_stream import StreamTranslator
from gatewise.providers.transport import Redactor

# --- responses ------------------------------------------------------------------------


def message(**fields: Any) -> bytes:
    body = {
        "id": "msg_01ABC",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 3},
        **fields,
    }
    return orjson.dumps(body)


def test_response_with_text_tools_and_thinking() -> None:
    response = decode_message(
        message(
            content=[
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Checking "},
                {"type": "text", "text": "now — ☀"},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Zürich"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
            ],
            stop_reason="tool_use",
            usage={
                "input_tokens": 10,
                "output_tokens": 7,
                "cache_creation_input_tokens": 100,
                "cache_read_input_tokens": 1000,
            },
        )
    )
    assert response.id == "msg_01ABC" and response.model == "claude-haiku-4-5"
    assert response.created > 1_700_000_000
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking now — ☀"
    calls = choice.message.tool_calls or []
    assert [(c.id, c.type, c.function.name) for c in calls] == [
        ("toolu_1", "function", "get_weather"),
        ("toolu_2", "function", "get_time"),
    ]
    assert orjson.loads(calls[0].function.arguments or "") == {"city": "Zürich"}
    assert calls[1].function.arguments == "{}"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (1110, 7)
    assert response.usage.total_tokens == 1117
    assert response.usage.prompt_tokens_details == {
        "cached_tokens": 1000,
        "cache_write_tokens": 100,
    }
    assert choice.message.reasoning_content == "hmm"
    assert choice.message.thinking_blocks == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    ]
    encoded = orjson.loads(openai_wire.encode_chat_response(response, relay_raw=True))
    assert encoded["choices"][0]["message"]["tool_calls"][0]["type"] == "function"
    assert encoded["choices"][0]["message"]["reasoning_content"] == "hmm"
    assert "stop_sequence" not in encoded["choices"][0]  # Anthropic said null


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("some_future_reason", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    assert decode_message(message(stop_reason=stop_reason)).choices[0].finish_reason == finish


def test_tool_only_answer_has_null_content() -> None:
    response = decode_message(
        message(content=[{"type": "tool_use", "id": "t", "name": "f", "input": {}}])
    )
    assert response.choices[0].message.content is None


@pytest.mark.parametrize("body", [b"<html>", b'{"content": 5}', b"[]"])
def test_unreadable_responses_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        decode_message(body)


# --- errors ---------------------------------------------------------------------------


def anthropic_error(type_: str, text: str) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": type_, "message": text}, "request_id": "req_1"}
    )


def test_upstream_error_keeps_status_type_message_and_retry_headers() -> None:
    headers = {"retry-after": "7", "anthropic-ratelimit-requests-remaining": "0"}
    error = error_from_response(
        "up", 429, headers, anthropic_error("rate_limit_error", "slow down"), Redactor([])
    )
    assert (error.status, error.type, error.message) == (429, "rate_limit_error", "slow down")
    assert error.headers == {"retry-after": "7"}
    overloaded = error_from_response(
        "up", 529, {}, anthropic_error("overloaded_error", "Overloaded"), Redactor([])
    )
    assert (overloaded.status, overloaded.type, overloaded.message) == (
        529,
        "overloaded_error",
        "Overloaded",
    )


def test_upstream_error_without_a_body_and_with_secrets() -> None:
    error = error_from_response("up", 529, {}, b"<html>busy</html>", Redactor([]))
    assert error.type == "overloaded_error" and "up" in error.message
    leaky = anthropic_error("authentication_error", "invalid x-api-key: sk-ant-secret-value-123")
    error = error_from_response("up", 401, {}, leaky, Redactor(["sk-ant-secret-value-123"]))
    assert "sk-ant-secret" not in error.message and error.status == 401


# --- streams ---------------------------------------------------------------------------


def sse(event: str, **data: Any) -> tuple[str, bytes]:
    return event, orjson.dumps({"type": event, **data})


START = sse(
    "message_start",
    message={
        "id": "msg_S",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [],
        "stop_reason": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 30,
        },
    },
)


def run(events: list[tuple[str | None, bytes]]) -> tuple[list[ChatChunk], StreamTranslator]:
    translator = StreamTranslator(Redactor([]), created=1_800_000_000)
    chunks: list[ChatChunk] = []
    for event, data in events:
        translator.feed(event, data, chunks)
    return chunks, translator


def deltas(chunks: list[ChatChunk]) -> list[Any]:
    return [
        orjson.loads(openai_wire.encode(chunk.choices[0].delta)) if chunk.choices else "usage"
        for chunk in chunks
    ]


def test_stream_with_thinking_text_and_parallel_tool_calls() -> None:
    chunks, translator = run(
        [
            START,
            sse("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}),
            sse("ping"),
            sse("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "hm"}),
            sse(
                "content_block_delta", index=0, delta={"type": "signature_delta", "signature": "s"}
            ),
            sse("content_block_stop", index=0),
            sse("content_block_start", index=1, content_block={"type": "text", "text": ""}),
            sse("content_block_delta", index=1, delta={"type": "text_delta", "text": "Héllo"}),
            sse("content_block_stop", index=1),
            sse(
                "content_block_start",
                index=2,
                content_block={
                    "type": "tool_use",
                    "id": "toolu_A",
                    "name": "get_weather",
                    "input": {},
                },
            ),
            sse(
                "content_block_delta",
                index=2,
                delta={"type": "input_json_delta", "partial_json": ""},
            ),
            sse(
                "content_block_delta",
                index=2,
                delta={"type": "input_json_delta", "partial_json": '{"city":'},
            ),
            sse(
                "content_block_start",
                index=3,
                content_block={
                    "type": "tool_use",
                    "id": "toolu_B",
                    "name": "get_time",
                    "input": {},
                },
            ),
            sse(
                "content_block_delta",
                index=2,
                delta={"type": "input_json_delta", "partial_json": '"Oslo"}'},
            ),
            sse(
                "content_block_delta",
                index=3,
                delta={"type": "input_json_delta", "partial_json": "{}"},
            ),
            sse("content_block_stop", index=2),
            sse("content_block_stop", index=3),
            sse(
                "message_delta",
                delta={"stop_reason": "tool_use", "stop_sequence": None},
                usage={"output_tokens": 42},
            ),
            sse("message_stop"),
        ]
    )
    assert deltas(chunks) == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "hm"},
        {"thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": "s"}]},
        {"content": "Héllo"},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_A",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "toolu_B",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]},
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
        {},
        "usage",
    ]
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert all(c.id == "msg_S" and c.model == "claude-haiku-4-5" for c in chunks)
    assert all(c.created == 1_800_000_000 for c in chunks)
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (42, 42, 84)
    assert usage.prompt_tokens_details == {"cached_tokens": 30, "cache_write_tokens": 0}
    assert translator.done


def test_message_delta_usage_replaces_the_start_counts() -> None:
    chunks, _ = run(
        [
            START,
            sse(
                "message_delta",
                delta={"stop_reason": "max_tokens"},
                usage={"input_tokens": 20, "cache_read_input_tokens": 0, "output_tokens": 5},
            ),
            sse("message_stop"),
        ]
    )
    assert chunks[-2].choices[0].finish_reason == "length"
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (20, 5)


def test_events_without_a_name_and_unknown_events() -> None:
    chunks, translator = run(
        [
            (None, START[1]),
            sse("some_new_event", anything=[1, 2]),
            (
                None,
                b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}',
            ),
            (
                None,
                b'{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}}',
            ),
        ]
    )
    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"content": "x"}]
    assert not translator.done


def test_error_event_raises_the_mapped_error() -> None:
    event = (
        "error",
        b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
    )
    with pytest.raises(GatewayError) as caught:
        run([START, event])
    assert (caught.value.status, caught.value.type, caught.value.message) == (
        529,
        "overloaded_error",
        "Overloaded",
    )


def test_invalid_event_json_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        run([START, ("content_block_delta", b"not json {{{")])


@pytest.mark.parametrize(
    "body",
    [b'{"object": "list", "data": []}', b'{"id": "msg_1", "type": "message", "role": "assistant"}'],
)
def test_a_200_without_content_is_not_a_message(body: bytes) -> None:
    from gatewise.core.errors import UpstreamProtocolError
    from gatewise.providers.anthropic_response import decode_message

    with pytest.raises(UpstreamProtocolError):
        decode_message(body)

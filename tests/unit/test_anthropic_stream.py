"""The Anthropic front door's stream encoder: canonical chunk batches in, exact SSE events out."""

from __future__ import annotations

from typing import Any

import orjson

from gatewise.core.types import (
    ChatChunk,
    ChunkBatch,
    ChunkChoice,
    Delta,
    FunctionCall,
    ToolCallDelta,
    Usage,
)
from gatewise.http.anthropic_stream import AnthropicStreamEncoder


def chunk(
    delta: Delta | None = None, finish: str | None = None, usage: Usage | None = None
) -> ChatChunk:
    choices = [] if delta is None else [ChunkChoice(0, delta, finish)]
    return ChatChunk(id="c", model="up", choices=choices, usage=usage)


def tool_delta(
    index: int, call_id: str | None = None, name: str | None = None, arguments: str | None = None
) -> Delta:
    function = FunctionCall(name, arguments) if name is not None or arguments is not None else None
    return Delta(
        tool_calls=[ToolCallDelta(index, call_id, "function" if call_id else None, function)]
    )


def parse_events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in data.decode().split("\n\n"):
        if not frame:
            continue
        name_line, data_line = frame.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        payload = orjson.loads(data_line[6:])
        assert payload["type"] == name_line[7:]  # the data's type matches the event name
        events.append((name_line[7:], payload))
    return events


def run(
    batches: list[list[ChatChunk]], input_estimate: int = 11, usage: Usage | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], AnthropicStreamEncoder]:
    encoder = AnthropicStreamEncoder("public", "msg_1", input_estimate)
    data = (
        encoder.start()
        + b"".join(encoder.encode(ChunkBatch(b)) for b in batches)
        + encoder.finish(usage)
    )
    return parse_events(data), encoder


def test_stream_text_then_tool_calls() -> None:
    usage = Usage(prompt_tokens=25, completion_tokens=9, total_tokens=34)
    events, encoder = run(
        [
            [chunk(Delta(role="assistant", content="")), chunk(Delta(content="Hello "))],
            [chunk(Delta(content="world"))],
            [
                chunk(tool_delta(0, "call_a", "f", "")),
                chunk(tool_delta(0, arguments='{"x":')),
                chunk(tool_delta(0, arguments="1}")),
            ],
            [chunk(tool_delta(1, "call_b", "g", "{}"))],
            [chunk(Delta(), "tool_calls"), chunk(usage=usage)],
        ]
    )
    assert [name for name, _ in events] == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    start = events[0][1]["message"]
    assert start["id"] == "msg_1" and start["model"] == "public" and start["content"] == []
    assert start["usage"]["input_tokens"] == 11
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert [e[1]["delta"]["text"] for e in events[3:5]] == ["Hello ", "world"]
    assert events[6][1] == {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "call_a", "name": "f", "input": {}},
    }
    assert [e[1]["delta"] for e in events[7:9]] == [
        {"type": "input_json_delta", "partial_json": '{"x":'},
        {"type": "input_json_delta", "partial_json": "1}"},
    ]
    assert events[9][1] == {"type": "content_block_stop", "index": 1}
    assert events[10][1]["index"] == 2 and events[10][1]["content_block"]["id"] == "call_b"
    assert events[13][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 25,
            "output_tokens": 9,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    assert encoder.usage is usage


def test_stream_without_upstream_usage_reports_the_corridors_estimate() -> None:
    estimate = Usage(prompt_tokens=7, completion_tokens=3, total_tokens=10)
    events, encoder = run(
        [[chunk(Delta(content="one two three")), chunk(Delta(), "length")]],
        input_estimate=7,
        usage=estimate,
    )
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "max_tokens"
    assert delta["usage"]["input_tokens"] == 7
    assert delta["usage"]["output_tokens"] == 3
    assert encoder.usage is estimate


def test_stream_odd_orders_still_close_every_block() -> None:
    events, _ = run(
        [
            # a tool call whose name arrives after its first fragment
            [chunk(tool_delta(0, "call_a", None, '{"a"')), chunk(tool_delta(0, None, "f", ":1}"))],
            # text after a tool call opens a new text block
            [chunk(Delta(content="after"))],
            # a late fragment for the closed tool block keeps its index
            [chunk(tool_delta(0, arguments=" "))],
            # a tool call that never gets a name is opened at the end
            [chunk(tool_delta(1, "call_b", None, "{}"))],
        ]
    )
    starts = [e for e in events if e[0] == "content_block_start"]
    stops = [e[1]["index"] for e in events if e[0] == "content_block_stop"]
    assert [s[1]["index"] for s in starts] == [0, 1, 2]
    assert sorted(stops) == [0, 1, 2]
    assert starts[0][1]["content_block"]["name"] == "f"
    first_args = [
        e[1]["delta"]["partial_json"]
        for e in events
        if e[0] == "content_block_delta" and e[1]["index"] == 0
    ]
    assert "".join(first_args) == '{"a":1} '
    assert starts[2][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_b",
        "name": "",
        "input": {},
    }
    assert (
        events[-2][1]["delta"]["stop_reason"] == "tool_use"
    )  # no finish chunk, but tools were called


def test_stream_with_no_content_and_other_choices() -> None:
    other = ChatChunk(choices=[ChunkChoice(1, Delta(content="ignored"))])
    events, _ = run([[other, chunk(Delta(), "stop")]])
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "message_delta",
        "message_stop",
    ]
    assert events[2][1]["delta"]["stop_reason"] == "end_turn"


def test_empty_batch_encodes_to_nothing() -> None:
    encoder = AnthropicStreamEncoder("m", "msg_1", 0)
    assert encoder.encode(ChunkBatch([chunk(Delta(role="assistant", content=""))])) == b""

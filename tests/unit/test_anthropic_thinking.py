"""Thinking, stop sequences and raw bytes across the Anthropic translations.

- the provider: native bodies, raw events per read, thinking and ``stop_sequence``
  in canonical chunks and responses;
- the canonical request: thinking blocks of the history go back to Anthropic first
  in their turn, and never to OpenAI-family upstreams;
- the Anthropic door's translated path: thinking blocks (with signatures) and the
  matched stop string come out of the canonical reply and stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import orjson
import pytest

from gatewise.core.errors import InvalidRequestError, UpstreamError
from gatewise.core.types import (
    ChatChunk,
    ChatResponse,
    Choice,
    ChunkBatch,
    ChunkChoice,
    Delta,
    ResponseMessage,
    raw_of,
)
from gatewise.formats import openai as openai_wire
from gatewise.http.anthropic_request import parse_request
from gatewise.http.anthropic_response import encode_message
from gatewise.http.anthropic_stream import AnthropicStreamEncoder
from gatewise.providers.anthropic import native_body
from gatewise.providers.anthropic_request import messages_request
from gatewise.providers.anthropic_response import decode_message
from gatewise.providers.anthropic_stream import AnthropicChunkStream, StreamTranslator
from gatewise.providers.transport import Redactor

SIGNED = {"type": "thinking", "thinking": "First, the city.", "signature": "sig-1"}
REDACTED = {"type": "redacted_thinking", "data": "opaque=="}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}


def event(name: str, **data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"


def block_delta(index: int, **delta: Any) -> bytes:
    return event("content_block_delta", index=index, delta=delta)


START = event(
    "message_start",
    message={
        "id": "msg_up",
        "type": "message",
        "role": "assistant",
        "model": "claude-up",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 1},
    },
)
#: A streamed message: two thinking blocks, a redacted one, cited text ended by a stop string.
EVENTS = [
    START,
    event("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}),
    event("ping"),
    block_delta(0, type="thinking_delta", thinking="First, "),
    block_delta(0, type="thinking_delta", thinking="the city."),
    block_delta(0, type="signature_delta", signature="sig-1"),
    event("content_block_stop", index=0),
    event("content_block_start", index=1, content_block=REDACTED),
    event("content_block_stop", index=1),
    event("content_block_start", index=2, content_block={"type": "thinking", "thinking": ""}),
    block_delta(2, type="thinking_delta", thinking="Then the answer."),
    block_delta(2, type="signature_delta", signature="sig-2"),
    event("content_block_stop", index=2),
    event("content_block_start", index=3, content_block={"type": "text", "text": ""}),
    block_delta(3, type="citations_delta", citation={"type": "char_location", "cited_text": "x"}),
    block_delta(3, type="text_delta", text="It is cold"),
    event("content_block_stop", index=3),
    event(
        "message_delta",
        delta={"stop_reason": "stop_sequence", "stop_sequence": "END"},
        usage={"output_tokens": 12},
    ),
    event("message_stop"),
]
SECOND = {"type": "thinking", "thinking": "Then the answer.", "signature": "sig-2"}


def translate(events: list[bytes]) -> list[ChatChunk]:
    translator = StreamTranslator(Redactor([]), created=1)
    chunks: list[ChatChunk] = []
    for raw in events:
        name, data = raw.split(b"\n")[:2]
        translator.feed(name[7:].decode(), data[6:], chunks)
    return chunks


# --- the provider: streams -------------------------------------------------------------


def test_stream_carries_thinking_redacted_blocks_and_the_stop_sequence() -> None:
    chunks = translate(EVENTS)
    deltas = [msgspec.to_builtins(c.choices[0].delta) for c in chunks if c.choices]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "First, "},
        {"reasoning_content": "the city."},
        {"thinking_blocks": [SIGNED]},
        {"thinking_blocks": [REDACTED]},
        {"reasoning_content": "\n\nThen the answer."},  # blocks apart, as in a whole reply
        {"thinking_blocks": [SECOND]},
        {"content": "It is cold"},
        {},
    ]
    finish = chunks[-2].choices[0]
    assert (finish.finish_reason, finish.stop_sequence) == ("stop", "END")
    encoded = orjson.loads(openai_wire.encode_chunk(chunks[-2]))
    assert encoded["choices"][0]["stop_sequence"] == "END"
    assert "stop_sequence" not in orjson.loads(openai_wire.encode_chunk(chunks[1]))["choices"][0]


class _Response:
    closed = False

    def close(self) -> None:
        self.closed = True


class _Transport:
    """Hands the stream the reads it is given, as the upstream connection would."""

    def __init__(self, reads: list[bytes]) -> None:
        self.reads = reads
        self.redact = Redactor([])

    async def iter_chunks(self, response: Any) -> AsyncIterator[bytes]:
        for data in self.reads:
            yield data


async def batches(reads: list[bytes]) -> tuple[list[ChunkBatch], BaseException | None]:
    stream = AnthropicChunkStream(_Transport(reads), _Response())  # type: ignore[arg-type]
    out: list[ChunkBatch] = []
    try:
        async for batch in stream:
            out.append(batch)
    except Exception as error:
        return out, error
    return out, None


async def test_every_read_yields_its_events_as_they_came() -> None:
    reads = [
        START + EVENTS[1] + EVENTS[2][:10],  # a read ending inside an event
        EVENTS[2][10:],  # the rest of the ping: no canonical chunk
        b"".join(EVENTS[3:7]),
        b"".join(EVENTS[7:]),
    ]
    found, error = await batches(reads)
    assert error is None
    assert all(batch.wire == "anthropic" and batch.raw is not None for batch in found)
    assert [b"".join(batch.raw or ()) for batch in found] == [
        START + EVENTS[1],
        EVENTS[2],
        b"".join(EVENTS[3:7]),
        b"".join(EVENTS[7:]),
    ]
    assert [len(batch.chunks) for batch in found] == [1, 0, 3, 6]
    assert b"".join(b"".join(batch.raw or ()) for batch in found) == b"".join(EVENTS)


async def test_unframed_and_multi_line_events_are_framed_as_sent() -> None:
    data_only = b'data: {"type":"ping"}\n\n'
    multi_line = b'event: ping\ndata: {"type":\ndata: "ping"}\n\n'
    found, error = await batches([START + data_only + multi_line + EVENTS[-2] + EVENTS[-1]])
    assert error is None
    assert found[0].raw == [START + data_only + multi_line + EVENTS[-2] + EVENTS[-1]]


async def test_events_before_an_error_event_go_out_then_the_error() -> None:
    failure = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",' + (
        b'"message":"Overloaded"}}\n\n'
    )
    found, error = await batches([START + EVENTS[1] + failure + EVENTS[2]])
    assert [batch.raw for batch in found] == [[START + EVENTS[1]]]
    assert len(found[0].chunks) == 1
    assert isinstance(error, UpstreamError) and error.status == 529


# --- the provider: complete replies and native bodies ------------------------------------


def test_reply_keeps_its_bytes_thinking_and_stop_sequence() -> None:
    body = orjson.dumps(
        {
            "id": "msg_up",
            "type": "message",
            "role": "assistant",
            "model": "claude-up",
            "content": [
                SIGNED,
                REDACTED,
                SECOND,
                {"type": "text", "text": "It is cold", "citations": [{"cited_text": "x"}]},
                TOOL_USE,
            ],
            "stop_reason": "stop_sequence",
            "stop_sequence": "END",
            "usage": {"input_tokens": 9, "output_tokens": 12},
        }
    )
    response = decode_message(body)
    assert raw_of(response, "anthropic") == body
    assert raw_of(response, "openai") is None
    choice = response.choices[0]
    assert choice.message.reasoning_content == "First, the city.\n\nThen the answer."
    assert choice.message.thinking_blocks == [SIGNED, REDACTED, SECOND]
    assert choice.stop_sequence == "END"
    # streamed, the same reasoning text arrives piece by piece
    streamed = "".join(
        c.choices[0].delta.reasoning_content or "" for c in translate(EVENTS) if c.choices
    )
    assert streamed == choice.message.reasoning_content


def test_reply_without_thinking_has_openais_shape() -> None:
    body = orjson.dumps(
        {
            "id": "m",
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
        }
    )
    encoded = orjson.loads(openai_wire.encode(decode_message(body)))
    assert set(encoded["choices"][0]) == {"index", "message", "finish_reason", "logprobs"}
    assert set(encoded["choices"][0]["message"]) == {"role", "content", "refusal", "tool_calls"}


def test_native_body_changes_only_model_and_stream() -> None:
    data: dict[str, Any] = {
        "model": "public",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "assistant", "content": [SIGNED, TOOL_USE]}],
        "some_future_field": {"x": 1},
    }
    plain = orjson.loads(native_body(data, "claude-up", stream=False))
    assert plain == {k: v for k, v in data.items() if k != "stream"} | {"model": "claude-up"}
    streamed = orjson.loads(native_body(data, "claude-up", stream=True))
    assert streamed == {**data, "model": "claude-up", "stream": True}
    assert data["model"] == "public" and data["stream"] is True  # the client's body untouched


# --- the canonical request: thinking blocks in the history -------------------------------

HISTORY: list[Any] = [
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": [SIGNED, REDACTED, TOOL_USE]},
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "4C"}],
    },
]


@pytest.mark.parametrize("native", [True, False])
def test_anthropic_history_goes_back_with_its_thinking_first(native: bool) -> None:
    chat = parse_request({"model": "m", "max_tokens": 9, "messages": HISTORY}, native=native).chat
    assert chat.messages[1].extra["thinking_blocks"] == [SIGNED, REDACTED]
    body = messages_request(chat, "claude-up", default_max_tokens=5, stream=False)
    assert body["messages"][1]["content"] == [SIGNED, REDACTED, TOOL_USE]
    # OpenAI-family upstreams never see them
    openai_body = orjson.loads(openai_wire.chat_request_body(chat, "gpt", force_stream_usage=False))
    assert "thinking_blocks" not in openai_body["messages"][1]
    assert openai_body["messages"][1]["tool_calls"][0]["id"] == "toolu_1"


def test_openai_clients_send_thinking_blocks_back_to_anthropic() -> None:
    request = openai_wire.parse_chat_request(
        {
            "model": "m",
            "messages": [
                HISTORY[0],
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "reasoning_content": "First, the city.",
                    "thinking_blocks": [SIGNED],
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_1", "content": "4C"},
            ],
        }
    )
    body = messages_request(request, "claude-up", default_max_tokens=5, stream=False)
    assert body["messages"][1]["content"] == [
        SIGNED,
        {"type": "text", "text": "Checking."},
        TOOL_USE,
    ]
    openai_body = orjson.loads(
        openai_wire.chat_request_body(request, "gpt", force_stream_usage=False)
    )
    assert "thinking_blocks" not in openai_body["messages"][1]


@pytest.mark.parametrize("blocks", [SIGNED, [{"type": "text", "text": "x"}], ["x"]])
def test_thinking_blocks_that_are_not_anthropics_are_refused(blocks: Any) -> None:
    request = openai_wire.parse_chat_request(
        {
            "model": "m",
            "messages": [
                HISTORY[0],
                {"role": "assistant", "content": "ok", "thinking_blocks": blocks},
                {"role": "user", "content": "and?"},
            ],
        }
    )
    with pytest.raises(InvalidRequestError) as caught:
        messages_request(request, "claude-up", default_max_tokens=5, stream=False)
    assert caught.value.param is not None
    assert caught.value.param.startswith("messages[1].thinking_blocks")


# --- the Anthropic door's translated path ------------------------------------------------


def test_translated_reply_shows_signed_thinking_and_the_stop_sequence() -> None:
    message = ResponseMessage(
        content="It is cold",
        reasoning_content="First, the city.",
        thinking_blocks=[SIGNED, REDACTED],
    )
    choice = Choice(0, message, "stop", stop_sequence="END")
    body = orjson.loads(encode_message(ChatResponse(choices=[choice]), "public", "msg_1"))
    assert body["content"] == [SIGNED, REDACTED, {"type": "text", "text": "It is cold"}]
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "END")
    # reasoning without Anthropic's signed blocks (Gemini ...) is not shown
    unsigned = ResponseMessage(content="It is cold", reasoning_content="Hmm.")
    body = orjson.loads(encode_message(ChatResponse(choices=[Choice(0, unsigned)]), "p", "m"))
    assert body["content"] == [{"type": "text", "text": "It is cold"}]
    assert (body["stop_reason"], body["stop_sequence"]) == ("end_turn", None)


def sse_events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for frame in data.decode().split("\n\n"):
        if frame:
            name, payload = frame.split("\n")
            found.append((name[7:], orjson.loads(payload[6:])))
    return found


def test_translated_stream_rebuilds_the_upstreams_blocks() -> None:
    """Anthropic events -> canonical chunks (provider) -> Anthropic events (door): the
    blocks and stop string survive; citations (no canonical form) do not."""
    encoder = AnthropicStreamEncoder("public", "msg_1", 9)
    chunks = translate(EVENTS)
    data = encoder.start() + encoder.encode(ChunkBatch(chunks)) + encoder.finish()
    events = sse_events(data)
    blocks: list[dict[str, Any]] = []
    for name, payload in events:
        if name == "content_block_start":
            blocks.append(dict(payload["content_block"]))
        elif name == "content_block_delta":
            block, delta = blocks[payload["index"]], payload["delta"]
            kind = delta["type"]
            if kind == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif kind == "signature_delta":
                block["signature"] = delta["signature"]
            elif kind == "text_delta":
                block["text"] += delta["text"]
    assert blocks == [SIGNED, REDACTED, SECOND, {"type": "text", "text": "It is cold"}]
    stops = [p["index"] for name, p in events if name == "content_block_stop"]
    assert stops == [0, 1, 2, 3]  # every block closed, in order
    final = next(p for name, p in events if name == "message_delta")
    assert final["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}


def test_translated_stream_skips_reasoning_without_blocks() -> None:
    encoder = AnthropicStreamEncoder("public", "msg_1", 9)
    batch = ChunkBatch(
        [
            ChatChunk(choices=[ChunkChoice(0, Delta(reasoning_content="Hmm."))]),
            ChatChunk(choices=[ChunkChoice(0, Delta(content="Hi"), "stop")]),
            ChatChunk(choices=[]),  # nothing at all
        ]
    )
    names = [name for name, _ in sse_events(encoder.encode(batch) + encoder.finish())]
    assert names == [
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert encoder.encode(ChunkBatch([], [b"event: ping\n..."], "anthropic")) == b""

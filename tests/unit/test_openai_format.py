"""Translation between OpenAI JSON and the canonical types (pure functions)."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from gatewise.core.errors import InvalidRequestError, UpstreamProtocolError
from gatewise.core.types import Embedding, EmbeddingResponse
from gatewise.formats import openai as wire


def parse(body: dict[str, object]):  # type: ignore[no-untyped-def]
    return wire.parse_chat_request(wire.parse_json_object(orjson.dumps(body)))


USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (b"", None, "empty"),
        (b"{not json", None, "could not parse the JSON"),
        (b"[1, 2]", None, "not an array"),
        (b'"text"', None, "not a string"),
        (b'{"messages": []}', "model", "Missing required parameter: 'model'"),
        (b'{"model": "m"}', "messages", "Missing required parameter: 'messages'"),
        (b'{"model": "m", "messages": []}', "messages", "at least one message"),
        (b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', "model", "str"),
        (
            b'{"model": "m", "messages": [{"role": "robot", "content": "x"}]}',
            "messages[0].role",
            "robot",
        ),
        (b'{"model": "m", "messages": [{"content": "x"}]}', "messages[0].role", "Missing"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": "2"}', "n", "int"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}',
            "n",
            "at least 1",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
            "bool",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": 7}]}',
            "messages[0].content",
            "got 'int'",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
            "temperature",
            "float",
        ),
    ],
)
def test_bad_chat_requests_name_the_field(body: bytes, param: str | None, fragment: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        wire.parse_chat_request(wire.parse_json_object(body))
    assert caught.value.status == 400
    assert caught.value.param == param
    assert fragment in caught.value.message


def test_unknown_fields_are_passed_through_at_every_level() -> None:
    request = parse(
        {
            "model": "public",
            "messages": [{"role": "user", "content": "hi", "cache_control": {"type": "x"}}],
            "reasoning_effort": "low",
            "top_k": 5,
            "stream": True,
        }
    )
    body = orjson.loads(wire.chat_request_body(request, "upstream-model", force_stream_usage=False))
    assert body["model"] == "upstream-model"
    assert body["reasoning_effort"] == "low"
    assert body["top_k"] == 5
    assert body["messages"][0]["cache_control"] == {"type": "x"}
    assert "extra" not in body and "extra" not in body["messages"][0]
    assert "stream_options" not in body


def test_known_fields_survive_the_round_trip_unchanged() -> None:
    original = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "data:x"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": 1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        "n": 2,
        "stop": ["\n", "END"],
        "seed": 7,
        "max_tokens": 10,
        "max_completion_tokens": 20,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
        "parallel_tool_calls": False,
        "user": "u1",
    }
    body = orjson.loads(wire.chat_request_body(parse(original), "m", force_stream_usage=False))
    expected = dict(original)
    expected["messages"] = [dict(m) for m in original["messages"]]  # type: ignore[union-attr]
    del expected["messages"][2]["content"]  # null content is the same as absent
    assert body == expected


def test_stream_usage_is_forced_only_for_streams() -> None:
    streamed = parse({"model": "m", "messages": USER, "stream": True})
    body = orjson.loads(wire.chat_request_body(streamed, "m", force_stream_usage=True))
    assert body["stream_options"] == {"include_usage": True}
    plain = parse({"model": "m", "messages": USER})
    assert "stream_options" not in orjson.loads(
        wire.chat_request_body(plain, "m", force_stream_usage=True)
    )


def test_upstream_response_is_relayed_verbatim_only_while_raw_relay_is_allowed() -> None:
    raw = b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi","annotations":[]},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"service_tier":"default"}'
    response = wire.decode_chat_response(raw)
    assert response.usage is not None and response.usage.total_tokens == 2
    assert wire.encode_chat_response(response, relay_raw=True) == raw
    # A step that may change output switches relay off: the canonical reply is encoded.
    response.choices[0].message.content = "changed"
    encoded = orjson.loads(wire.encode_chat_response(response, relay_raw=False))
    assert encoded["choices"][0]["message"]["content"] == "changed"
    assert "service_tier" not in encoded


def test_native_body_keeps_everything_the_client_sent() -> None:
    data = {
        "model": "public-name",
        "messages": [{"role": "user", "content": "hi", "vendor_field": {"x": [1, 2]}}],
        "max_tokens": 5,
        "stream": True,
        "stream_options": {"include_obfuscation": False},
        "unknown_top_level": None,
    }
    body = orjson.loads(
        wire.native_chat_body(
            data, "upstream-name", force_stream_usage=True, modern_max_tokens=True
        )
    )
    assert body == {
        "model": "upstream-name",
        "messages": data["messages"],
        "max_completion_tokens": 5,
        "stream": True,
        "stream_options": {"include_obfuscation": False, "include_usage": True},
        "unknown_top_level": None,
    }
    assert data["model"] == "public-name" and "max_tokens" in data  # the client's dict is untouched


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"choices": "nope"}',
        b"[]",
        b'{"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]}',
    ],
)
def test_malformed_upstream_responses_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        wire.decode_chat_response(body)


def test_embedding_input_shapes() -> None:
    for good in ["a", ["a", "b"], [1, 2, 3], [[1, 2], [3]]]:
        assert wire.parse_embedding_request({"model": "e", "input": good}).input == good
    for bad in ["", [], ["a", 1], ["a", ""], None, 5]:
        with pytest.raises(InvalidRequestError) as caught:
            wire.parse_embedding_request({"model": "e", "input": bad})
        assert caught.value.param == "input"


def test_base64_embeddings_are_little_endian_float32() -> None:
    vector = [0.5, -1.25, 3.0]
    encoded = wire.floats_to_base64(vector)
    assert list(struct.unpack("<3f", base64.b64decode(encoded))) == vector
    response = EmbeddingResponse(data=[Embedding(index=0, embedding=vector)], model="e")
    assert wire.embeddings_as(response, "base64").data[0].embedding == encoded
    assert wire.embeddings_as(response, "float").data[0].embedding == vector


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error":{"message":"m","type":"t","code":"c","param":"p"}}', ("m", "t", "c", "p")),
        (b'{"error":"plain text"}', ("plain text", None, None, None)),
        (b'{"detail":"fastapi style"}', ("fastapi style", None, None, None)),
        (b"<html>bad gateway</html>", (None, None, None, None)),
    ],
)
def test_upstream_error_bodies(body: bytes, expected: tuple[str | None, ...]) -> None:
    assert wire.upstream_error_fields(body) == expected


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    """``depth`` levels of alternating arrays and objects around ``leaf``."""
    body = leaf
    for level in range(depth):
        body = b"[" + body + b"]" if level % 2 else b'{"k": ' + body + b"}"
    return body


@pytest.mark.parametrize("depth", [63, 64])
def test_nesting_up_to_the_limit_is_accepted_and_re_encodes(depth: int) -> None:
    body = b'{"model": "m", "x": ' + nested(depth - 1) + b"}"  # the body is level 1
    data = wire.parse_json_object(body)
    assert orjson.loads(orjson.dumps(data)) == data


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "m", "logit_bias": ' + nested(64) + b"}", "logit_bias[0].k[0]"),
        (
            b'{"tools": [{"function": {"parameters": ' + nested(500) + b"}}]}",
            "tools[0].function.parameters",
        ),
        (b'{"extra": ' + b"[" * 1000 + b"]" * 1000 + b"}", "extra[0][0][0]"),
    ],
)
def test_nesting_beyond_the_limit_is_a_400_naming_the_field(body: bytes, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        wire.parse_json_object(body)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert "nested too deeply" in caught.value.message and param in caught.value.message


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    """The cheap opener count sees brackets in strings; the exact walk then clears them."""
    body = b'{"model": "m", "text": "' + b"[{" * 500 + b'", "x": ' + nested(60) + b"}"
    assert wire.parse_json_object(body)["text"] == "[{" * 500


def test_many_shallow_containers_are_not_deep() -> None:
    body = orjson.dumps({"messages": [{"role": "user", "content": [{"type": "text"}]}] * 200})
    assert len(wire.parse_json_object(body)["messages"]) == 200

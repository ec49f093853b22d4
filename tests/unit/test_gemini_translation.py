"""Canonical <-> Gemini translation, table-driven: requests, schemas, responses, streams, errors."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from gatewise.core.errors import InvalidRequestError, UpstreamProtocolError
from gatewise.formats.gemini import signature_of, tool_call_id
from gatewise.formats.openai import parse_chat_request
from gatewise.providers.gemini import error_fields
from gatewise.providers.gemini_request import chat_body
from gatewise.providers.gemini_response import StreamTranslator, chat_response, decode
from gatewise.providers.gemini_schema import clean_schema, parameters_schema

PNG = "iVBORw0KGgo="


def body_for(messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    request = parse_chat_request({"model": "m", "messages": messages, **params})
    result: dict[str, Any] = orjson.loads(chat_body(request))
    return result


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# --- messages -------------------------------------------------------------------------------

MESSAGE_CASES: list[
    tuple[str, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]
] = [
    (
        "plain",
        [user("Hi")],
        [{"role": "user", "parts": [{"text": "Hi"}]}],
        [],
    ),
    (
        "empty content is left out",
        [
            user(""),
            {"role": "assistant", "content": ""},
            user([{"type": "text", "text": ""}]),
            user("x"),
        ],
        [{"role": "user", "parts": [{"text": "x"}]}],
        [],
    ),
    (
        "several system and developer messages, in order, wherever they are",
        [
            {"role": "system", "content": "Be brief."},
            user("a"),
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {"role": "assistant", "content": "b"},
        ],
        [{"role": "user", "parts": [{"text": "a"}]}, {"role": "model", "parts": [{"text": "b"}]}],
        [{"text": "Be brief."}, {"text": "Use French."}],
    ),
    (
        "parallel tool calls and their results in one turn",
        [
            user("weather in Paris and Oslo?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    call("call_1", "weather", '{"city": "Paris"}'),
                    call("call_2", "weather", '{"city": "Oslo"}'),
                ],
            },
            {"role": "tool", "tool_call_id": "call_2", "content": '{"temp": -3}'},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            user("thanks"),
        ],
        [
            {"role": "user", "parts": [{"text": "weather in Paris and Oslo?"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "weather", "response": {"temp": -3}}},
                    {"functionResponse": {"name": "weather", "response": {"content": "sunny"}}},
                ],
            },
            {"role": "user", "parts": [{"text": "thanks"}]},
        ],
        [],
    ),
    (
        "tool results that are not JSON objects are wrapped; empty arguments are {}",
        [
            {"role": "assistant", "content": "checking", "tool_calls": [call("c", "now", "")]},
            {"role": "tool", "tool_call_id": "c", "content": "[1, 2]"},
            {"role": "tool", "tool_call_id": "c", "content": "{not json"},
        ],
        [
            {
                "role": "model",
                "parts": [{"text": "checking"}, {"functionCall": {"name": "now", "args": {}}}],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "now", "response": {"content": "[1, 2]"}}},
                    {"functionResponse": {"name": "now", "response": {"content": "{not json"}}},
                ],
            },
        ],
        [],
    ),
    (
        "images, audio and files",
        [
            user(
                [
                    {"type": "text", "text": "what is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
                    },
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.JPG?size=2"},
                    },
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    {
                        "type": "file",
                        "file": {
                            "file_data": "data:application/pdf;base64,JVBERg==",
                            "filename": "a.pdf",
                        },
                    },
                ]
            )
        ],
        [
            {
                "role": "user",
                "parts": [
                    {"text": "what is this?"},
                    {"inlineData": {"mimeType": "image/png", "data": PNG}},
                    {
                        "fileData": {
                            "mimeType": "image/jpeg",
                            "fileUri": "https://example.com/cat.JPG?size=2",
                        }
                    },
                    {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                    {"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}},
                ],
            }
        ],
        [],
    ),
    (
        "unicode survives",
        [user("Grüße 👋 — 你好"), {"role": "assistant", "content": "مرحبا"}],
        [
            {"role": "user", "parts": [{"text": "Grüße 👋 — 你好"}]},
            {"role": "model", "parts": [{"text": "مرحبا"}]},
        ],
        [],
    ),
]


@pytest.mark.parametrize(
    ("messages", "contents", "system"),
    [case[1:] for case in MESSAGE_CASES],
    ids=[case[0] for case in MESSAGE_CASES],
)
def test_messages(
    messages: list[dict[str, Any]], contents: list[dict[str, Any]], system: list[dict[str, Any]]
) -> None:
    body = body_for(messages)
    assert body["contents"] == contents
    if system:
        assert body["systemInstruction"] == {"parts": system}
    else:
        assert "systemInstruction" not in body


# fmt: off
BAD_MESSAGES: list[tuple[str, list[dict[str, Any]], str]] = [
    ("only system messages", [{"role": "system", "content": "x"}, user("")], "messages"),
    ("unknown tool call id", [user("x"), {"role": "tool", "tool_call_id": "nope", "content": "1"}], "messages[1].tool_call_id"),
    ("arguments not JSON", [{"role": "assistant", "tool_calls": [call("c", "f", "{oops")]}], "messages[0].tool_calls[0].function.arguments"),
    ("arguments not an object", [{"role": "assistant", "tool_calls": [call("c", "f", "[1]")]}], "messages[0].tool_calls[0].function.arguments"),
    ("image URL without a known type", [user([{"type": "image_url", "image_url": {"url": "https://x.test/img"}}])], "messages[0].content[0].image_url.url"),
    ("data URL not base64", [user([{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}])], "messages[0].content[0].image_url.url"),
    ("ftp URL", [user([{"type": "image_url", "image_url": {"url": "ftp://x.test/a.png"}}])], "messages[0].content[0].image_url.url"),
    ("file id", [user([{"type": "file", "file": {"file_id": "file-1"}}])], "messages[0].content[0].file"),
    ("audio format", [user([{"type": "input_audio", "input_audio": {"data": "x", "format": "ogg"}}])], "messages[0].content[0].input_audio.format"),
    ("unknown part type", [user([{"type": "hologram"}])], "messages[0].content[0].type"),
]

# fmt: on


@pytest.mark.parametrize(
    ("messages", "param"), [c[1:] for c in BAD_MESSAGES], ids=[c[0] for c in BAD_MESSAGES]
)
def test_untranslatable_messages_are_clear_400s(messages: list[dict[str, Any]], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        body_for(messages)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert param in caught.value.message


def test_thought_signature_round_trips_through_the_tool_call_id() -> None:
    call_id = tool_call_id("call_r_0_0", "ab+/cd==")
    assert call_id == "call_r_0_0__ts_ab-_cd" and signature_of(call_id) == "ab-_cd"
    assert signature_of("call_r_0_0") is None and tool_call_id("call_x", None) == "call_x"
    body = body_for([{"role": "assistant", "tool_calls": [call(call_id, "f", "{}")]}, user("go")])
    assert body["contents"][0]["parts"][0] == {
        "functionCall": {"name": "f", "args": {}},
        "thoughtSignature": "ab-_cd",
    }


# --- parameters -------------------------------------------------------------------------------

# fmt: off
PARAMETER_CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
    ("nothing set", {}, None),
    ("stop string", {"stop": "END"}, {"stopSequences": ["END"]}),
    ("stop list", {"stop": ["a", "b"]}, {"stopSequences": ["a", "b"]}),
    (
        "sampling, limits, n, seed",
        {"temperature": 0.2, "top_p": 0.9, "max_tokens": 10, "n": 2, "seed": 7},
        {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 10, "candidateCount": 2, "seed": 7},
    ),
    ("max_completion_tokens wins", {"max_tokens": 10, "max_completion_tokens": 20}, {"maxOutputTokens": 20}),
    (
        "extra sampling parameters",
        {"top_k": 5, "presence_penalty": 0.5, "frequency_penalty": 0.1, "reasoning_effort": "low"},
        {"topK": 5, "presencePenalty": 0.5, "frequencyPenalty": 0.1, "thinkingConfig": {"thinkingBudget": 1024}},
    ),
    ("response_format text", {"response_format": {"type": "text"}}, None),
    ("json_object", {"response_format": {"type": "json_object"}}, {"responseMimeType": "application/json"}),
    (
        "json_schema (cleaned)",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "r",
                    "strict": True,
                    "schema": {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "integer"}}},
                },
            }
        },
        {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
        },
    ),
    ("raw generationConfig override", {"generationConfig": {"topK": 3, "temperature": 1.0}, "temperature": 0.1}, {"temperature": 1.0, "topK": 3}),
]

# fmt: on


@pytest.mark.parametrize(
    ("params", "expected"), [c[1:] for c in PARAMETER_CASES], ids=[c[0] for c in PARAMETER_CASES]
)
def test_generation_config(params: dict[str, Any], expected: dict[str, Any] | None) -> None:
    body = body_for([user("x")], **params)
    assert body.get("generationConfig") == expected


def test_openai_only_fields_are_dropped_and_gemini_fields_pass() -> None:
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    body = body_for(
        [user("x")],
        user="u1",
        parallel_tool_calls=False,
        logit_bias={"1": 2},
        metadata={"a": "b"},
        safety_settings=safety,
        cachedContent="cachedContents/abc",
    )
    assert body == {
        "contents": [{"role": "user", "parts": [{"text": "x"}]}],
        "safetySettings": safety,
        "cachedContent": "cachedContents/abc",
    }


# fmt: off
WEATHER = {"type": "function", "function": {"name": "weather", "description": "d", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
CLOCK = {"type": "function", "function": {"name": "clock", "parameters": {"type": "object", "properties": {}}}}

TOOL_CHOICES: list[tuple[str, Any, dict[str, Any] | None, list[str]]] = [
    ("absent", None, None, ["weather", "clock"]),
    ("auto", "auto", {"mode": "AUTO"}, ["weather", "clock"]),
    ("none", "none", {"mode": "NONE"}, ["weather", "clock"]),
    ("required", "required", {"mode": "ANY"}, ["weather", "clock"]),
    ("named", {"type": "function", "function": {"name": "clock"}}, {"mode": "ANY", "allowedFunctionNames": ["clock"]}, ["weather", "clock"]),
    (
        "allowed_tools required",
        {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "clock"}}]}},
        {"mode": "ANY", "allowedFunctionNames": ["clock"]},
        ["weather", "clock"],
    ),
    (
        "allowed_tools auto narrows the declarations",
        {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "clock"}}]}},
        {"mode": "AUTO"},
        ["clock"],
    ),
]

# fmt: on


@pytest.mark.parametrize(
    ("choice", "config", "declared"),
    [c[1:] for c in TOOL_CHOICES],
    ids=[c[0] for c in TOOL_CHOICES],
)
def test_tools_and_tool_choice(
    choice: Any, config: dict[str, Any] | None, declared: list[str]
) -> None:
    params: dict[str, Any] = {"tools": [WEATHER, CLOCK]}
    if choice is not None:
        params["tool_choice"] = choice
    body = body_for([user("x")], **params)
    declarations = body["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == declared
    assert body.get("toolConfig") == ({"functionCallingConfig": config} if config else None)
    if "weather" in declared:
        assert declarations[0] == {
            "name": "weather",
            "description": "d",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    assert "parameters" not in declarations[-1]  # clock takes no arguments


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice.function.name",
        ),
        ({"response_format": {"type": "grammar"}}, "response_format.type"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ],
)
def test_unsupported_parameters_are_clear_400s(params: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        body_for([user("x")], **params)
    assert caught.value.param == param


# --- schema cleaning ----------------------------------------------------------------------------

SCHEMA_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "keys Gemini rejects are dropped",
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "title": "Args",
            "additionalProperties": False,
            "strict": True,
            "properties": {
                "n": {
                    "type": "integer",
                    "exclusiveMinimum": 0,
                    "multipleOf": 2,
                    "default": 4,
                    "minimum": 1,
                },
                "tags": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {"type": "string", "examples": ["x"]},
                    "maxItems": 3,
                },
            },
            "required": ["n", "ghost"],
        },
        {
            "type": "object",
            "properties": {
                "n": {"type": "integer", "minimum": 1},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            },
            "required": ["n"],
        },
    ),
    (
        "$ref and $defs are inlined",
        {
            "type": "object",
            "$defs": {"Unit": {"type": "string", "enum": ["c", "f"]}},
            "properties": {"unit": {"$ref": "#/$defs/Unit", "description": "which"}},
        },
        {
            "type": "object",
            "properties": {"unit": {"type": "string", "enum": ["c", "f"], "description": "which"}},
        },
    ),
    (
        "null in type lists, anyOf and enums becomes nullable",
        {
            "type": "object",
            "properties": {
                "a": {"type": ["string", "null"]},
                "b": {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "maybe"},
                "c": {"enum": ["x", None]},
            },
        },
        {
            "type": "object",
            "properties": {
                "a": {"type": "string", "nullable": True},
                "b": {"type": "integer", "description": "maybe", "nullable": True},
                "c": {"enum": ["x"], "type": "string", "nullable": True},
            },
        },
    ),
    (
        "oneOf becomes anyOf, allOf is merged, const is an enum",
        {
            "oneOf": [{"type": "string"}, {"type": "number"}],
            "allOf": [
                {"type": "object", "properties": {"a": {"const": "on"}}, "required": ["a"]},
                {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
            ],
        },
        {
            "type": "object",
            "properties": {"a": {"enum": ["on"], "type": "string"}, "b": {"type": "boolean"}},
            "required": ["a", "b"],
            "anyOf": [{"type": "string"}, {"type": "number"}],
        },
    ),
    (
        "formats Gemini does not support are dropped; non-string enums too",
        {
            "type": "object",
            "properties": {
                "when": {"type": "string", "format": "date-time"},
                "mail": {"type": "string", "format": "email"},
                "level": {"type": "integer", "enum": [1, 2, 3], "format": "int32"},
            },
        },
        {
            "type": "object",
            "properties": {
                "when": {"type": "string", "format": "date-time"},
                "mail": {"type": "string"},
                "level": {"type": "integer", "format": "int32"},
            },
        },
    ),
]


@pytest.mark.parametrize(
    ("schema", "expected"), [c[1:] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES]
)
def test_schema_cleaning(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    before = orjson.dumps(schema)
    assert clean_schema(schema, "p") == expected
    assert orjson.dumps(schema) == before  # the request's own schema is not modified


def test_schemas_gemini_cannot_express_are_refused() -> None:
    recursive = {
        "type": "object",
        "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}},
        "properties": {"head": {"$ref": "#/$defs/N"}},
    }
    with pytest.raises(InvalidRequestError, match="recursive"):
        clean_schema(recursive, "tools[0].function.parameters")
    with pytest.raises(InvalidRequestError, match="resolve"):
        clean_schema({"$ref": "https://example.com/schema.json"}, "p")
    with pytest.raises(InvalidRequestError, match="must be an object"):
        clean_schema(["not", "a", "schema"], "p")


def test_functions_without_arguments_have_no_parameters() -> None:
    assert (
        parameters_schema({"type": "object", "properties": {}, "additionalProperties": False}, "p")
        is None
    )
    assert parameters_schema(None, "p") is None
    assert parameters_schema({"type": "object", "properties": {"a": {}}}, "p") == {
        "type": "object",
        "properties": {"a": {}},
    }


# --- responses ------------------------------------------------------------------------------------


def gemini(candidates: list[dict[str, Any]] | None = None, **fields: Any) -> bytes:
    body: dict[str, Any] = dict(fields)
    if candidates is not None:
        body["candidates"] = candidates
    return orjson.dumps(body, option=orjson.OPT_INDENT_2)  # Google pretty-prints


def candidate(
    parts: list[dict[str, Any]], finish: str | None = "STOP", index: int = 0
) -> dict[str, Any]:
    result: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": index}
    if finish is not None:
        result["finishReason"] = finish
    return result


def text_candidate(text: str, finish: str | None = "STOP", index: int = 0) -> dict[str, Any]:
    return candidate([{"text": text}], finish, index)


FINISH_CASES = [
    ("STOP", "stop"),
    ("MAX_TOKENS", "length"),
    ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"),
    ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"),
    ("SPII", "content_filter"),
    ("OTHER", "stop"),
    ("SOMETHING_NEW", "stop"),
]


@pytest.mark.parametrize(("gemini_reason", "openai_reason"), FINISH_CASES)
def test_finish_reasons(gemini_reason: str, openai_reason: str) -> None:
    response = chat_response(gemini([text_candidate("x", gemini_reason)]), "m", 1)
    assert response.choices[0].finish_reason == openai_reason


def test_safety_stop_without_content() -> None:
    ratings = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH"}]
    data = gemini([{"finishReason": "SAFETY", "index": 0, "safetyRatings": ratings}])
    choice = chat_response(data, "m", 1).choices[0]
    assert (choice.finish_reason, choice.message.content) == ("content_filter", None)


def test_blocked_prompt_is_a_content_filter_response_not_an_error() -> None:
    usage = {"promptTokenCount": 4, "totalTokenCount": 4}
    data = gemini(promptFeedback={"blockReason": "SAFETY"}, usageMetadata=usage)
    response = chat_response(data, "gemini-x", 2)
    assert [(c.index, c.finish_reason, c.message.content) for c in response.choices] == [
        (0, "content_filter", None),
        (1, "content_filter", None),
    ]
    assert response.usage is not None and response.usage.prompt_tokens == 4
    with pytest.raises(UpstreamProtocolError):
        chat_response(gemini([]), "m", 1)  # neither candidates nor a reason


def test_text_candidates_usage_and_identity() -> None:
    thought = {"text": "thinking...", "thought": True}
    data = gemini(
        [
            text_candidate("second", index=1),
            candidate([thought, {"text": "Hel"}, {"text": "lo ✓"}]),
        ],
        usageMetadata={
            "promptTokenCount": 10,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 7,
            "cachedContentTokenCount": 6,
            "totalTokenCount": 22,
        },
        modelVersion="gemini-2.5-flash-001",
        responseId="abc-123",
    )
    response = chat_response(data, "gemini-2.5-flash", 2)
    # Sorted by index; thought summaries are not part of the content, but the reasoning.
    assert [c.message.content for c in response.choices] == ["Hello ✓", "second"]
    assert response.choices[0].message.reasoning_content == "thinking..."
    assert response.choices[1].message.reasoning_content is msgspec.UNSET
    assert (response.id, response.model) == ("chatcmpl-abc-123", "gemini-2.5-flash-001")
    usage = response.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 12, 22)
    assert usage.prompt_tokens_details == {"cached_tokens": 6}
    assert usage.completion_tokens_details == {"reasoning_tokens": 7}


def test_function_calls_get_deterministic_ids() -> None:
    weather = {
        "functionCall": {"name": "weather", "args": {"city": "Zürich"}},
        "thoughtSignature": "c2ln+/==",
    }
    parts = [{"text": "Let me check."}, weather, {"functionCall": {"name": "clock"}}]
    data = gemini([candidate(parts)], responseId="r-1_x")
    first, again = chat_response(data, "m", 1), chat_response(data, "m", 1)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.content == "Let me check."
    calls = message.tool_calls or []
    assert [c.id for c in calls] == ["call_r1x_0_0__ts_c2ln-_", "call_r1x_0_1"]
    assert [c.id for c in again.choices[0].message.tool_calls or []] == [c.id for c in calls]
    assert [(c.function.name, orjson.loads(c.function.arguments or "")) for c in calls] == [
        ("weather", {"city": "Zürich"}),
        ("clock", {}),
    ]


def test_a_response_that_is_not_gemini_is_a_protocol_error() -> None:
    for data in (b"<html>", b'{"candidates": "nope"}'):
        with pytest.raises(UpstreamProtocolError):
            chat_response(data, "m", 1)


# --- streams ------------------------------------------------------------------------------------


def feed_all(translator: StreamTranslator, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    chunks = []
    for event in events:
        chunks += translator.feed(decode(orjson.dumps(event)))
    chunks += translator.finish()
    return [msgspec.to_builtins(c) for c in chunks]


def summary(chunk: dict[str, Any]) -> tuple[int, dict[str, Any], str | None]:
    choice = chunk["choices"][0]
    return choice["index"], choice["delta"], choice["finish_reason"]


def test_stream_text_finish_and_usage() -> None:
    final_usage = {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}
    events = [
        {
            "candidates": [text_candidate("Hel", None)],
            "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
            "responseId": "s1",
            "modelVersion": "gemini-v",
        },
        {"candidates": [text_candidate("lo")], "usageMetadata": final_usage, "responseId": "s1"},
    ]
    chunks = feed_all(StreamTranslator("m", 1), events)
    assert {(c["id"], c["model"]) for c in chunks} == {("chatcmpl-s1", "gemini-v")}
    assert [summary(c) for c in chunks[:-1]] == [
        (0, {"role": "assistant", "content": "Hel"}, None),
        (0, {"content": "lo"}, None),
        (0, {}, "stop"),  # the finish reason in a chunk of its own
    ]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_stream_thoughts_become_reasoning_content() -> None:
    thought = {"text": "Weighing it.", "thought": True}
    events = [
        {"candidates": [candidate([thought], None)], "responseId": "s2"},
        {"candidates": [candidate([{"text": "Pondered", "thought": True}, {"text": "Yes"}])]},
    ]
    chunks = feed_all(StreamTranslator("m", 1), events)
    assert [summary(c) for c in chunks] == [
        (0, {"role": "assistant", "content": "", "reasoning_content": "Weighing it."}, None),
        (0, {"content": "Yes", "reasoning_content": "Pondered"}, None),
        (0, {}, "stop"),
    ]


def test_stream_function_calls_arrive_as_complete_deltas() -> None:
    weather = {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}
    clock = {"functionCall": {"name": "clock", "args": {}}}
    events = [
        {"candidates": [candidate([weather], None)], "responseId": "t"},
        {"candidates": [candidate([clock])]},
    ]
    chunks = feed_all(StreamTranslator("m", 1), events)
    assert [summary(c) for c in chunks] == [
        (
            0,
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_t_0_0",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            None,
        ),
        (
            0,
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_t_0_1",
                        "type": "function",
                        "function": {"name": "clock", "arguments": "{}"},
                    }
                ]
            },
            None,
        ),
        (0, {}, "tool_calls"),
    ]  # and no usage chunk: the stream carried no usageMetadata


def test_stream_blocked_prompt_and_two_candidates() -> None:
    event = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 2, "totalTokenCount": 2},
    }
    blocked = feed_all(StreamTranslator("m", 2), [event])
    assert [summary(c) for c in blocked[:2]] == [
        (0, {"role": "assistant"}, "content_filter"),
        (1, {"role": "assistant"}, "content_filter"),
    ]
    assert blocked[2]["usage"]["prompt_tokens"] == 2
    both = [text_candidate("a", index=0), text_candidate("b", index=1)]
    two = feed_all(StreamTranslator("m", 2), [{"candidates": both}])
    assert [summary(c) for c in two] == [
        (0, {"role": "assistant", "content": "a"}, None),
        (0, {}, "stop"),
        (1, {"role": "assistant", "content": "b"}, None),
        (1, {}, "stop"),
    ]


def test_a_stream_without_a_finish_reason_is_incomplete() -> None:
    translator = StreamTranslator("m", 1)
    translator.feed(decode(orjson.dumps({"candidates": [text_candidate("a", None)]})))
    with pytest.raises(UpstreamProtocolError, match="before it was complete"):
        translator.finish()


# --- errors -----------------------------------------------------------------------------------------

# fmt: off
ERROR_CASES: list[tuple[str, bytes, tuple[Any, ...]]] = [
    ("plain", b'{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}', ("The model is overloaded.", "UNAVAILABLE", None, None)),
    (
        "stream endpoint array with details",
        orjson.dumps([{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37.5s"}]}}]),
        ("quota", "RESOURCE_EXHAUSTED", None, 37.5),
    ),
    (
        "bad key",
        orjson.dumps({"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}),
        ("API key not valid.", "INVALID_ARGUMENT", "API_KEY_INVALID", None),
    ),
    ("not JSON", b"<html>502</html>", (None, None, None, None)),
    ("not Google's", b'{"message": "nope"}', (None, None, None, None)),
]

# fmt: on


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_error_fields(body: bytes, expected: tuple[Any, ...]) -> None:
    assert error_fields(body) == expected


def test_deeply_nested_tool_arguments_are_a_400_not_a_failed_encoding() -> None:
    """The arguments string is parsed and encoded again: orjson stops at 254 levels."""
    arguments = '{"a": ' + "[" * 300 + "]" * 300 + "}"
    with pytest.raises(InvalidRequestError) as caught:
        body_for([user("x"), {"role": "assistant", "tool_calls": [call("c", "f", arguments)]}])
    assert caught.value.status == 400
    assert str(caught.value.param).startswith("messages[1].tool_calls[0].function.arguments.a")
    assert "nested too deeply" in caught.value.message
    ok = '{"a": ' + "[" * 63 + "]" * 63 + "}"  # 64 levels
    body_for([user("x"), {"role": "assistant", "tool_calls": [call("c", "f", ok)]}])

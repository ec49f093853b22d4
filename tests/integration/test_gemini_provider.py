"""The ``gemini`` provider: the official openai SDK -> gateway -> fake Gemini upstream, real sockets."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pytest

from gatewise.testing import Scenario, run_in_thread
from gatewise.testing.gemini_upstream import FakeGeminiUpstream, GeminiScenario
from tests.rawhttp import Reply, post, request

GEMINI_KEY = "AIzaSyFakeGeminiKey-0123456789abcdefghi"
MODEL = "gemini-2.5-flash"
HELLO = [{"role": "user", "content": "Hello Gemini"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "strict": True,
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f", None]},
            },
            "required": ["city", "unit"],
        },
    },
}
CLOCK = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}


def gateway_config(base_url: str, key_ref: str = "${env:GW_TEST_GEMINI_KEY}") -> dict[str, Any]:
    return {
        "auth": {"mode": "open"},
        "providers": {
            "gem": {
                "type": "gemini",
                "api_key": key_ref,
                "base_url": base_url,
                "timeouts": {"first_byte": 2.0, "idle": 2.0, "total": 10},
            }
        },
        "models": [
            {"name": "chat", "deployments": [{"provider": "gem", "model": MODEL}]},
            {"name": "embed", "deployments": [{"provider": "gem", "model": "text-embedding-004"}]},
        ],
    }


@pytest.fixture(scope="module")
def gemini_fake() -> Iterator[FakeGeminiUpstream]:
    with run_in_thread(FakeGeminiUpstream(api_key=GEMINI_KEY, stream_chunks=4)) as fake:
        yield fake


@pytest.fixture
def fake(gemini_fake: FakeGeminiUpstream) -> FakeGeminiUpstream:
    gemini_fake.reset()
    return gemini_fake


@pytest.fixture
def gateway_url(start_gateway, fake: FakeGeminiUpstream, monkeypatch: pytest.MonkeyPatch) -> str:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GW_TEST_GEMINI_KEY", GEMINI_KEY)
    return str(start_gateway(gateway_config(fake.base_url)).openai_base_url)


@pytest.fixture
def client(gateway_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway_url, api_key="client-key", max_retries=0)


def chat(gateway_url: str, body: dict[str, Any]) -> Reply:
    return post(gateway_url + "/chat/completions", {"model": "chat", **body})


def assert_error(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.body
    error: dict[str, Any] = reply.json["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "Traceback" not in error["message"]
    return error


# --- chat ---------------------------------------------------------------------------------------


def test_chat_reaches_gemini_in_its_own_shape(
    client: openai.OpenAI, fake: FakeGeminiUpstream
) -> None:
    completion = client.chat.completions.create(
        model="chat",
        messages=[{"role": "system", "content": "Be brief."}, *HELLO],  # type: ignore[list-item]
        temperature=0.3,
        top_p=0.8,
        max_completion_tokens=40,
        stop=["STOP"],
        seed=11,
        user="someone",
    )
    assert completion.choices[0].message.content == "Echo: Hello Gemini"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == MODEL
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 3)
    sent = fake.requests[-1]
    assert (sent.method, sent.path, sent.query) == (
        "POST",
        f"/v1beta/models/{MODEL}:generateContent",
        {},
    )
    assert sent.headers["x-goog-api-key"] == GEMINI_KEY
    assert "authorization" not in sent.headers
    assert sent.json == {
        "contents": [{"role": "user", "parts": [{"text": "Hello Gemini"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "temperature": 0.3,
            "topP": 0.8,
            "maxOutputTokens": 40,
            "stopSequences": ["STOP"],
            "seed": 11,
        },
    }


def test_stream_with_include_usage(client: openai.OpenAI, fake: FakeGeminiUpstream) -> None:
    chunks = list(
        client.chat.completions.create(
            model="chat",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
    )
    sent = fake.requests[-1]
    assert (sent.path, sent.query) == (
        f"/v1beta/models/{MODEL}:streamGenerateContent",
        {"alt": "sse"},
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: Hello Gemini"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (2, 3)
    assert len({c.id for c in chunks}) == 1


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="chat", messages=HELLO, stream=True))  # type: ignore[arg-type]
    assert all(c.choices and c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_n_2_asks_for_two_candidates(client: openai.OpenAI, fake: FakeGeminiUpstream) -> None:
    completion = client.chat.completions.create(model="chat", messages=HELLO, n=2)  # type: ignore[arg-type]
    assert [c.index for c in completion.choices] == [0, 1]
    assert {c.message.content for c in completion.choices} == {"Echo: Hello Gemini"}
    assert fake.requests[-1].json["generationConfig"] == {"candidateCount": 2}
    chunks = list(client.chat.completions.create(model="chat", messages=HELLO, n=2, stream=True))  # type: ignore[arg-type]
    for index in (0, 1):
        text = "".join(
            c.choices[0].delta.content or "" for c in chunks if c.choices[0].index == index
        )
        assert text == "Echo: Hello Gemini"


def test_json_schema_response_format(client: openai.OpenAI, fake: FakeGeminiUpstream) -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    completion = client.chat.completions.create(
        model="chat",
        messages=HELLO,  # type: ignore[arg-type]
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "a", "strict": True, "schema": schema},
        },
    )
    assert orjson.loads(completion.choices[0].message.content or "") == {"answer": 1}
    assert fake.requests[-1].json["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "object",
            "properties": {"answer": {"type": "integer"}},
            "required": ["answer"],
        },
    }


def test_images_go_inline_or_by_uri(client: openai.OpenAI, fake: FakeGeminiUpstream) -> None:
    content = [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/photo.webp"}},
    ]
    completion = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": content}]
    )  # type: ignore[misc, list-item]
    assert completion.choices[0].message.content == "Echo: Describe"
    assert fake.requests[-1].json["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/photo.webp"}},
    ]


def test_untranslatable_request_is_a_400_before_any_upstream_call(
    gateway_url: str, fake: FakeGeminiUpstream
) -> None:
    reply = chat(
        gateway_url,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x.test/noext"}}
                    ],
                }
            ]
        },
    )
    error = assert_error(reply, 400)
    assert error["param"] == "messages[0].content[0].image_url.url"
    assert fake.requests == []


# --- tools --------------------------------------------------------------------------------------------


def test_tool_call_round_trip(client: openai.OpenAI, fake: FakeGeminiUpstream) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    completion = client.chat.completions.create(
        model="chat",
        messages=messages,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},  # type: ignore[list-item]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = (choice.message.tool_calls or [])[0]
    assert call.id.startswith("call_") and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert orjson.loads(call.function.arguments) == {"city": "fake", "unit": "c"}  # type: ignore[union-attr]
    sent = fake.requests[-1].json
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string"},
                            "unit": {"type": "string", "enum": ["c", "f"], "nullable": True},
                        },
                        "required": ["city", "unit"],
                    },
                }
            ]
        }
    ]
    assert sent["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": -3}'},
    ]
    answer = client.chat.completions.create(model="chat", messages=messages, tools=[WEATHER])
    assert answer.choices[0].message.content == 'Tool result: {"temp":-3}'
    contents = fake.requests[-1].json["contents"]
    assert contents[1:] == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "fake", "unit": "c"}}}
            ],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": -3}}}],
        },
    ]


def test_streamed_parallel_tool_calls(client: openai.OpenAI, fake: FakeGeminiUpstream) -> None:
    allowed = {
        "mode": "required",
        "tools": [
            {"type": "function", "function": {"name": n}} for n in ("get_weather", "get_time")
        ],
    }
    chunks = list(
        client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "both please"}],
            tools=[WEATHER, CLOCK],  # type: ignore[list-item]
            tool_choice={"type": "allowed_tools", "allowed_tools": allowed},  # type: ignore[typeddict-item]
            stream=True,
        )
    )
    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert [(d.index, d.function.name) for d in deltas] == [(0, "get_weather"), (1, "get_time")]  # type: ignore[union-attr]
    assert all(d.id and d.id.startswith("call_") for d in deltas) and deltas[0].id != deltas[1].id
    assert [orjson.loads(d.function.arguments or "") for d in deltas] == [
        {"city": "fake", "unit": "c"},
        {"zone": "fake"},
    ]  # type: ignore[union-attr]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert fake.requests[-1].json["toolConfig"] == {
        "functionCallingConfig": {
            "mode": "ANY",
            "allowedFunctionNames": ["get_weather", "get_time"],
        }
    }


# --- safety -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario",
    [GeminiScenario(finish_reason="SAFETY"), GeminiScenario(block_reason="SAFETY")],
    ids=["candidate", "prompt"],
)
def test_safety_blocks_end_with_content_filter(
    client: openai.OpenAI, fake: FakeGeminiUpstream, scenario: GeminiScenario
) -> None:
    fake.script(scenario)
    completion = client.chat.completions.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content is None
    fake.script(scenario)
    chunks = list(client.chat.completions.create(model="chat", messages=HELLO, stream=True))  # type: ignore[arg-type]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "content_filter"
    assert not any(c.choices[0].delta.content for c in chunks)


def test_safety_markers_work_in_band(gateway_url: str) -> None:
    reply = chat(
        gateway_url, {"messages": [{"role": "user", "content": "x [[fake:block_reason=safety]]"}]}
    )
    assert reply.status == 200 and reply.json["choices"][0]["finish_reason"] == "content_filter"


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "status", "code", "exception"),
    [
        (Scenario(status=429, retry_after=3), 429, "resource_exhausted", openai.RateLimitError),
        (Scenario(status=503), 503, "unavailable", openai.InternalServerError),
        (
            Scenario(status=500, error_message="boom at the upstream"),
            500,
            "internal",
            openai.InternalServerError,
        ),
    ],
)
def test_upstream_errors_are_relayed(
    client: openai.OpenAI,
    fake: FakeGeminiUpstream,
    scenario: Scenario,
    status: int,
    code: str,
    exception: type[openai.APIStatusError],
) -> None:
    for stream in (False, True):
        fake.script(scenario)
        with pytest.raises(exception) as caught:
            client.chat.completions.create(model="chat", messages=HELLO, stream=stream)  # type: ignore[call-overload]
        error = caught.value
        assert error.status_code == status
        assert isinstance(error.body, dict) and error.body["code"] == code
        expected = scenario.error_message or (
            "You exceeded your current quota" if status == 429 else "overloaded"
        )
        assert expected in error.message
        if status == 429:
            assert error.response.headers["retry-after"] == "3"  # from the body's RetryInfo


def test_a_retry_after_header_from_upstream_wins(
    gateway_url: str, fake: FakeGeminiUpstream
) -> None:
    fake.script(Scenario(status=429, retry_after=3, headers={"retry-after": "7"}))
    reply = chat(gateway_url, {"messages": HELLO})
    assert_error(reply, 429)
    assert reply.headers["retry-after"] == "7"


def test_wrong_key_is_relayed_without_leaking_it(
    start_gateway, fake: FakeGeminiUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    wrong = "AIzaSyWrongKeyForTheGateway0123456789abc"
    monkeypatch.setenv("GW_TEST_WRONG_GEMINI_KEY", wrong)
    url = start_gateway(
        gateway_config(fake.base_url, "${env:GW_TEST_WRONG_GEMINI_KEY}")
    ).openai_base_url
    reply = chat(url, {"messages": HELLO})
    assert fake.requests[-1].headers["x-goog-api-key"] == wrong
    error = assert_error(reply, 400)
    assert error["message"] == "API key not valid. Please pass a valid API key."
    assert error["code"] == "api_key_invalid"
    # Even when the upstream echoes the key, the gateway does not.
    fake.script(Scenario(status=400, error_message=f"Key {wrong} and {wrong[:-1]}X are not valid"))
    echoed = chat(url, {"messages": HELLO})
    assert_error(echoed, 400)
    assert wrong not in echoed.body.decode() and "WrongKeyForTheGateway" not in echoed.body.decode()


def test_mid_stream_reset_and_garbage(
    client: openai.OpenAI, gateway_url: str, fake: FakeGeminiUpstream
) -> None:
    fake.script(Scenario(reset_after=2))
    received = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model="chat", messages=HELLO, stream=True):  # type: ignore[arg-type]
            received.append(chunk)
    assert received, "chunks before the failure reach the client"
    fake.script(Scenario(garbage=True))
    assert (
        assert_error(chat(gateway_url, {"messages": HELLO}), 502)["code"] == "bad_upstream_response"
    )
    fake.script(Scenario(garbage_stream=True))  # before the first chunk: a plain error
    assert_error(chat(gateway_url, {"messages": HELLO, "stream": True}), 502)


# --- embeddings ---------------------------------------------------------------------------------------


def test_embeddings_base64_by_default(
    client: openai.OpenAI, gateway_url: str, fake: FakeGeminiUpstream
) -> None:
    result = client.embeddings.create(
        model="embed", input=["alpha", "beta"], dimensions=8
    )  # the SDK asks for base64
    assert [len(d.embedding) for d in result.data] == [8, 8]
    assert result.usage.prompt_tokens >= 2  # counted by the gateway: Gemini reports none
    sent = fake.requests[-1]
    assert sent.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert sent.json == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "outputDimensionality": 8,
                "content": {"parts": [{"text": "alpha"}]},
            },
            {
                "model": "models/text-embedding-004",
                "outputDimensionality": 8,
                "content": {"parts": [{"text": "beta"}]},
            },
        ]
    }
    raw = post(
        gateway_url + "/embeddings",
        {"model": "embed", "input": "alpha", "dimensions": 8, "encoding_format": "base64"},
    )
    packed = base64.b64decode(raw.json["data"][0]["embedding"])
    assert list(struct.unpack("<8f", packed)) == pytest.approx(result.data[0].embedding)
    floats = post(
        gateway_url + "/embeddings", {"model": "embed", "input": "alpha", "dimensions": 8}
    )
    assert floats.json["data"][0]["embedding"] == pytest.approx(result.data[0].embedding)
    assert result.data[0].embedding != result.data[1].embedding


def test_token_id_embeddings_are_refused(gateway_url: str, fake: FakeGeminiUpstream) -> None:
    reply = post(gateway_url + "/embeddings", {"model": "embed", "input": [1, 2, 3]})
    error = assert_error(reply, 400)
    assert error["param"] == "input" and "token" in error["message"]
    assert fake.requests == []


# --- the fake itself ------------------------------------------------------------------------------------


def test_fake_auth_and_models(fake: FakeGeminiUpstream) -> None:
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    url = f"{fake.base_url}/models/{MODEL}:generateContent"
    missing = post(url, body)
    assert (missing.status, missing.json["error"]["status"]) == (403, "PERMISSION_DENIED")
    wrong = post(url + "?key=nope", body)
    assert wrong.json == {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": wrong.json["error"]["details"],
        }
    }
    ok = post(url + f"?key={GEMINI_KEY}", body)
    assert ok.status == 200 and ok.json["candidates"][0]["content"]["parts"] == [
        {"text": "Echo: hi"}
    ]
    models = request("GET", f"{fake.base_url}/models", headers={"x-goog-api-key": GEMINI_KEY})
    assert f"models/{MODEL}" in [m["name"] for m in models.json["models"]]


def test_fake_streams_a_json_array_without_alt_sse(fake: FakeGeminiUpstream) -> None:
    reply = post(
        f"{fake.base_url}/models/{MODEL}:streamGenerateContent",
        {"contents": [{"role": "user", "parts": [{"text": "one two three"}]}]},
        headers={"x-goog-api-key": GEMINI_KEY},
    )
    assert reply.headers["content-type"].startswith("application/json")
    events = orjson.loads(reply.body)
    assert (
        "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events)
        == "Echo: one two three"
    )
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 4


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"contents": [{"parts": [{"text": "x"}]}], "max_tokens": 5}, 'Unknown name "max_tokens"'),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "valid role"),
        ({"contents": [{"role": "user", "parts": []}]}, "must not be empty"),
        (
            {
                "contents": [{"parts": [{"text": "x"}]}],
                "tools": [
                    {
                        "functionDeclarations": [
                            {
                                "name": "f",
                                "parameters": {"type": "object", "additionalProperties": False},
                            }
                        ]
                    }
                ],
            },
            "Unknown name \"additionalProperties\" at 'tools[0].function_declarations[0].parameters'",
        ),
    ],
)
def test_fake_rejects_what_gemini_rejects(
    fake: FakeGeminiUpstream, body: dict[str, Any], message: str
) -> None:
    reply = post(
        f"{fake.base_url}/models/{MODEL}:generateContent",
        body,
        headers={"x-goog-api-key": GEMINI_KEY},
    )
    assert reply.status == 400 and reply.json["error"]["status"] == "INVALID_ARGUMENT"
    assert message in reply.json["error"]["message"]

"""The official openai SDK against the gateway in front of a fake OpenAI upstream."""

from __future__ import annotations

import base64
import struct

import openai
import pytest

from gatewise.testing import FakeOpenAIUpstream
from gatewise.testing.gateway import RunningGateway
from tests.conftest import UPSTREAM_KEY
from tests.rawhttp import post

MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "Hello gateway"}]


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.openai_base_url, api_key="client-key", max_retries=0)


@pytest.fixture
def async_client(gateway: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.openai_base_url, api_key="client-key", max_retries=0)


def test_chat_completion(client: openai.OpenAI, upstream: FakeOpenAIUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    completion = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.object == "chat.completion"
    assert "Hello gateway" in (completion.choices[0].message.content or "")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    forwarded = upstream.requests[-1]
    assert forwarded.path == "/v1/chat/completions"
    assert (
        forwarded.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    )  # the gateway's key, not the client's


def test_parameters_and_unknown_fields_are_passed_through(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    completion = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        n=2,
        stop=["END"],
        seed=42,
        max_completion_tokens=50,
        temperature=0.2,
        response_format={"type": "text"},
        extra_body={"top_k": 3, "vendor_option": {"nested": True}},
    )
    assert len(completion.choices) == 2
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    body = upstream.requests[-1].json
    assert body["tools"] == tools
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert (body["n"], body["stop"], body["seed"], body["max_completion_tokens"]) == (
        2,
        ["END"],
        42,
        50,
    )
    assert body["response_format"] == {"type": "text"}
    assert body["top_k"] == 3 and body["vendor_option"] == {"nested": True}


def test_streaming_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Hello gateway" in text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]


def test_streaming_without_usage_hides_the_usage_chunk(
    client: openai.OpenAI, upstream: FakeOpenAIUpstream
) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True))
    assert all(c.choices for c in chunks), "the usage-only chunk must not reach this client"
    assert upstream.requests[-1].json["stream_options"] == {"include_usage": True}


def test_streamed_tool_calls(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        stream=True,
        tools=[
            {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
        ],
        tool_choice="required",
    )
    calls = [tc for c in stream if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function is not None and calls[0].function.name == "lookup"
    arguments = "".join((tc.function.arguments or "") for tc in calls if tc.function)
    assert arguments.startswith("{")


async def test_async_client_chat_and_stream(async_client: openai.AsyncOpenAI) -> None:
    completion = await async_client.chat.completions.create(model=MODEL, messages=HELLO)
    assert completion.choices[0].message.content
    stream = await async_client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    pieces = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "Hello gateway" in "".join(p or "" for p in pieces)


def test_embeddings_default_base64(client: openai.OpenAI, upstream: FakeOpenAIUpstream) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    assert upstream.requests[-1].json["encoding_format"] == "base64"  # the SDK's default
    assert [d.index for d in result.data] == [0, 1]
    assert all(isinstance(v, float) for v in result.data[0].embedding)
    floats = client.embeddings.create(
        model="text-embedding-3-small", input="one", encoding_format="float"
    )
    assert floats.data[0].embedding == pytest.approx(result.data[0].embedding, rel=1e-6)


def test_embeddings_base64_wire_format(gateway: RunningGateway) -> None:
    reply = post(
        gateway.openai_base_url + "/embeddings",
        {
            "model": "text-embedding-3-small",
            "input": "abc",
            "encoding_format": "base64",
            "dimensions": 8,
        },
    )
    vector = base64.b64decode(reply.json["data"][0]["embedding"])
    assert len(struct.unpack("<8f", vector)) == 8


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == [MODEL, "text-embedding-3-small", "mock-gpt"]
    assert client.models.retrieve("mock-gpt").id == "mock-gpt"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("nope")
    assert caught.value.code == "model_not_found"


def test_mock_provider_through_the_sdk(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="mock-gpt", messages=HELLO)
    assert completion.choices[0].message.content == "Mock reply to: Hello gateway"
    streamed = client.chat.completions.create(model="mock-gpt", messages=HELLO, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == (
        "Mock reply to: Hello gateway"
    )

"""The fake OpenAI / Azure upstream over real sockets, driven by the official SDK and raw HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import pytest
from multidict import CIMultiDict

from gatewise.testing import FakeOpenAIUpstream, Scenario, run_in_thread
from gatewise.testing.cli import run_mock_upstream

KEY = "sk-upstream-secret"
HELLO: Any = [{"role": "user", "content": "hello there"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIUpstream]:
    with run_in_thread(FakeOpenAIUpstream(api_key=KEY)) as running:
        yield running


@pytest.fixture
def client(fake: FakeOpenAIUpstream) -> openai.OpenAI:
    fake.reset()
    return openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0, timeout=5)


# -- OpenAI SDK: the happy paths ------------------------------------------------------
def test_chat_completion_has_the_exact_openai_shape(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HELLO)
    assert raw.headers["x-request-id"].startswith("req_")
    assert "openai-processing-ms" in raw.headers
    body = json.loads(raw.text)
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-4o-mini"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Echo: hello there",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"]["prompt_tokens"] == 2
    assert body["usage"]["completion_tokens"] == 3
    assert body["usage"]["total_tokens"] == 5
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    assert body["service_tier"] == "default"
    assert body["system_fingerprint"]
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: hello there"


def test_chat_honours_n_max_tokens_and_stop(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "one two three four five"}]
    many = client.chat.completions.create(model="m", messages=messages, n=3)
    assert [c.index for c in many.choices] == [0, 1, 2]
    cut = client.chat.completions.create(model="m", messages=messages, max_completion_tokens=3)
    assert cut.choices[0].message.content == "Echo: one two"
    assert cut.choices[0].finish_reason == "length"
    stopped = client.chat.completions.create(model="m", messages=messages, stop=[" three"])
    assert stopped.choices[0].message.content == "Echo: one two"
    assert stopped.choices[0].finish_reason == "stop"


def test_identical_requests_get_fresh_ids(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="m", messages=HELLO)
    second = client.chat.completions.create(model="m", messages=HELLO)
    assert first.id != second.id
    assert first.choices[0].message.content == second.choices[0].message.content


def test_stream_with_include_usage(client: openai.OpenAI, fake: FakeOpenAIUpstream) -> None:
    long_text = " ".join(f"word{i}" for i in range(25))
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": long_text}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    content = [c.choices[0].delta.content for c in chunks[1:-2]]
    assert len(content) == fake.stream_chunks
    assert "".join(c or "" for c in content) == "Echo: " + long_text
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-2].choices[0].delta.content is None
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 26
    assert len({c.id for c in chunks}) == 1


def test_tool_call_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="m",
        messages=HELLO,
        tools=[{"type": "function", "function": {"name": "other"}}, WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call: Any = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert arguments == {"city": "fake", "unit": "celsius", "days": 1}
    after = client.chat.completions.create(
        model="m",
        messages=[
            *HELLO,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert after.choices[0].message.content == "Tool result: sunny"
    none = client.chat.completions.create(
        model="m",
        messages=HELLO,
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    assert none.choices[0].message.tool_calls is None


def test_streamed_tool_call_fragments(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m",
        messages=HELLO,
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chunks = list(stream)
    calls: Any = chunks[0].choices[0].delta.tool_calls
    first = calls[0]
    assert first.id and first.type == "function" and first.function is not None
    assert first.function.name == "get_weather" and first.function.arguments == ""
    pieces = []
    for chunk in chunks[1:-1]:
        fragments: Any = chunk.choices[0].delta.tool_calls
        fragment = fragments[0]
        assert fragment.index == 0 and fragment.id is None and fragment.function is not None
        assert fragment.function.name is None
        pieces.append(fragment.function.arguments)
    assert json.loads("".join(p or "" for p in pieces))["city"] == "fake"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_scripted_pieces_are_the_exact_deltas(
    client: openai.OpenAI, fake: FakeOpenAIUpstream
) -> None:
    fake.script(Scenario(pieces=("Hi <EM", "AIL_1> ", "there")))
    plain = client.chat.completions.create(model="m", messages=HELLO)
    assert plain.choices[0].message.content == "Hi <EMAIL_1> there"
    fake.script(Scenario(pieces=("Hi <EM", "AIL_1> ", "there")))
    chunks = list(client.chat.completions.create(model="m", messages=HELLO, stream=True))
    deltas = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert deltas == ["Hi <EM", "AIL_1> ", "there"]
    fake.script(Scenario(pieces=('{"to": "<EM', 'AIL_1>"}')))
    streamed = client.chat.completions.create(
        model="m", messages=HELLO, tools=[WEATHER_TOOL], stream=True
    )
    fragments: Any = [c.choices[0].delta.tool_calls for c in list(streamed)[1:-1]]
    assert [f[0].function.arguments for f in fragments] == ['{"to": "<EM', 'AIL_1>"}']


def test_json_response_formats(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(
        model="m",
        messages=HELLO,
        response_format={"type": "json_object"},
    )
    assert json.loads(plain.choices[0].message.content or "") == {"echo": "Echo: hello there"}
    schema: Any = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "n": {"type": "number"}},
    }
    shaped = client.chat.completions.create(
        model="m",
        messages=HELLO,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    assert json.loads(shaped.choices[0].message.content or "") == {"answer": "fake", "n": 1.5}


def test_embeddings_float_and_default_base64(
    client: openai.OpenAI, fake: FakeOpenAIUpstream
) -> None:
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=["alpha", "beta"], encoding_format="float"
    )
    assert [d.index for d in floats.data] == [0, 1]
    assert len(floats.data[0].embedding) == 1536
    assert abs(sum(x * x for x in floats.data[0].embedding) - 1.0) < 1e-4
    assert floats.usage.prompt_tokens == 2 and floats.usage.total_tokens == 2
    decoded = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    assert fake.last_request is not None
    assert fake.last_request.json["encoding_format"] == "base64"  # the SDK's default
    assert decoded.data[0].embedding == floats.data[0].embedding
    assert decoded.data[1].embedding != decoded.data[0].embedding
    small = client.embeddings.create(
        model="text-embedding-3-large", input=[[1, 2, 3]], dimensions=4
    )
    assert len(small.data[0].embedding) == 4 and small.usage.prompt_tokens == 3
    with pytest.raises(openai.BadRequestError) as error:
        client.embeddings.create(model="text-embedding-3-small", input="")
    assert error.value.type == "invalid_request_error"


def test_embeddings_base64_is_little_endian_float32(fake: FakeOpenAIUpstream) -> None:
    body = {"model": "m", "input": "alpha", "encoding_format": "base64", "dimensions": 3}
    raw = openai.OpenAI(base_url=fake.base_url, api_key=KEY).post(
        "/embeddings", body=body, cast_to=object
    )
    assert isinstance(raw, dict)
    packed = base64.b64decode(raw["data"][0]["embedding"])
    values = struct.unpack("<3f", packed)
    assert abs(sum(v * v for v in values) - 1.0) < 1e-5


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-mini" in ids
    model = client.models.retrieve("gpt-4o-mini")
    assert model.object == "model" and model.owned_by == "system"
    with pytest.raises(openai.NotFoundError) as error:
        client.models.retrieve("no-such-model")
    assert error.value.code == "model_not_found"


def test_wrong_or_missing_key(fake: FakeOpenAIUpstream) -> None:
    wrong = openai.OpenAI(base_url=fake.base_url, api_key="sk-wrong-123", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as error:
        wrong.models.list()
    assert error.value.code == "invalid_api_key"
    assert "sk-wrong-123" in error.value.message  # echoed whole, unlike the real API
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(fake.base_url + "/models", timeout=5)
    assert missing.value.code == 401
    assert "didn't provide an API key" in json.loads(missing.value.read())["error"]["message"]


# -- Azure ------------------------------------------------------------------------------
def test_azure_classic_and_v1(fake: FakeOpenAIUpstream) -> None:
    fake.reset()
    azure = openai.AzureOpenAI(
        azure_endpoint=fake.url, api_version="2024-10-21", api_key=KEY, max_retries=0
    )
    completion = azure.chat.completions.create(model="my-deployment", messages=HELLO)
    assert completion.choices[0].message.content == "Echo: hello there"
    seen = fake.last_request
    assert seen is not None
    assert seen.path == "/openai/deployments/my-deployment/chat/completions"
    assert seen.query == {"api-version": "2024-10-21"}
    assert seen.headers["api-key"] == KEY and "authorization" not in seen.headers
    raw = json.loads(seen.body)
    assert raw["messages"] == HELLO
    vectors = azure.embeddings.create(model="emb-deployment", input="hi")
    assert len(vectors.data[0].embedding) == 1536
    stream = azure.chat.completions.create(model="d", messages=HELLO, stream=True)
    chunks = list(stream)
    assert chunks[0].choices == []  # Azure's prompt_filter_results event comes first
    assert "".join(c.choices[0].delta.content or "" for c in chunks[1:]) == "Echo: hello there"
    v1 = openai.OpenAI(base_url=fake.url + "/openai/v1", api_key=KEY, max_retries=0)
    assert v1.chat.completions.create(model="dep", messages=HELLO).model == "dep"
    wrong = openai.AzureOpenAI(
        azure_endpoint=fake.url, api_version="2024-10-21", api_key="nope", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="d", messages=HELLO)


# -- raw HTTP: errors and scripted failures --------------------------------------------------
async def _post(
    session: aiohttp.ClientSession, url: str, body: Any, **kwargs: Any
) -> tuple[int, CIMultiDict[str], bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with session.post(url, data=data, **kwargs) as response:
        return response.status, CIMultiDict(response.headers), await response.read()


def _chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


async def test_azure_requires_api_version() -> None:
    async with FakeOpenAIUpstream() as fake, aiohttp.ClientSession() as session:
        url = fake.url + "/openai/deployments/d/chat/completions"
        status, _, body = await _post(session, url, _chat("hi"))
    assert status == 404
    assert json.loads(body) == {"error": {"code": "404", "message": "Resource not found"}}


async def test_malformed_json_and_unknown_route() -> None:
    async with FakeOpenAIUpstream() as fake, aiohttp.ClientSession() as session:
        status, _, body = await _post(session, fake.base_url + "/chat/completions", b"{nope")
        assert status == 400
        error = json.loads(body)["error"]
        assert (
            error["type"] == "invalid_request_error" and "parse the JSON body" in error["message"]
        )
        assert set(error) == {"message", "type", "param", "code"}
        status, _, _ = await _post(session, fake.base_url + "/nowhere", {})
        assert status == 404


async def test_scripted_429_with_headers_in_fifo_order() -> None:
    async with FakeOpenAIUpstream() as fake, aiohttp.ClientSession() as session:
        fake.script(Scenario(status=429, retry_after=2, times=2), Scenario(status=500))
        url = fake.base_url + "/chat/completions"
        results = [await _post(session, url, _chat("hi")) for _ in range(4)]
    assert [status for status, _, _ in results] == [429, 429, 500, 200]
    _, headers, body = results[0]
    assert headers["retry-after"] == "2" and headers["retry-after-ms"] == "2000"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-limit-requests"] and headers["x-ratelimit-reset-tokens"]
    error = json.loads(body)["error"]
    assert error["type"] == "requests" and error["code"] == "rate_limit_exceeded"
    assert json.loads(results[2][2])["error"]["type"] == "server_error"


async def test_inband_markers() -> None:
    async with FakeOpenAIUpstream(record=False) as fake, aiohttp.ClientSession() as session:
        url = fake.base_url + "/chat/completions"
        status, headers, _ = await _post(
            session, url, _chat("hi [[fake:status=503]] [[fake:retry_after=1.5]]")
        )
        assert status == 503 and headers["retry-after"] == "2"
        status, headers, body = await _post(session, url, _chat("hi [[fake:ratelimit_headers]]"))
        assert status == 200 and headers["x-ratelimit-remaining-requests"] == "9999"
        assert json.loads(body)["choices"][0]["message"]["content"] == "Echo: hi"
        status, _, _ = await _post(session, url, _chat("[[fake:bogus=1]]"))
        assert status == 400
        status, _, _ = await _post(
            session,
            fake.base_url + "/embeddings",
            {"model": "e", "input": ["ok", "[[fake:status=500]]"]},
        )
        assert status == 500
        assert fake.requests == []  # recording off


async def test_stream_events_chunks_marker_and_usage_nulls() -> None:
    async with FakeOpenAIUpstream() as fake, aiohttp.ClientSession() as session:
        body = _chat(
            "a b c d e f g [[fake:chunks=5]] [[fake:chunk_delay=0.001]]",
            stream=True,
            stream_options={"include_usage": True},
        )
        status, headers, raw = await _post(session, fake.base_url + "/chat/completions", body)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert headers["Transfer-Encoding"] == "chunked"
    events = [e for e in raw.decode().split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert len(chunks) == 1 + 5 + 1 + 1
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


async def test_reset_mid_stream() -> None:
    async with FakeOpenAIUpstream() as fake:
        fake.script(Scenario(reset_after=3))
        reader, writer = await asyncio.open_connection("127.0.0.1", int(fake.url.rsplit(":", 1)[1]))
        payload = json.dumps(_chat("one two three four", stream=True)).encode()
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        received = b""
        with pytest.raises(ConnectionResetError):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                received += data
        writer.close()
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert received.count(b"data: ") == 3
    assert b"[DONE]" not in received


async def test_reset_non_stream_and_garbage() -> None:
    async with FakeOpenAIUpstream() as fake, aiohttp.ClientSession() as session:
        url = fake.base_url + "/chat/completions"
        fake.script(Scenario(reset_after=0), Scenario(garbage=True), Scenario(garbage_stream=True))
        with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientOSError)):
            await _post(session, url, _chat("hi"))
        status, _, body = await _post(session, url, _chat("hi"))
        assert status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
        status, headers, body = await _post(session, url, _chat("hi", stream=True))
        assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
        first = body.split(b"\n\n")[0]
        assert first.startswith(b"data: ")
        with pytest.raises(json.JSONDecodeError):
            json.loads(first[6:])


async def test_slow_first_byte_and_hang_trip_client_timeouts() -> None:
    async with FakeOpenAIUpstream() as fake, aiohttp.ClientSession() as session:
        url = fake.base_url + "/chat/completions"
        started = time.perf_counter()
        with pytest.raises(asyncio.TimeoutError):
            await _post(
                session,
                url,
                _chat("[[fake:slow_first_byte=30]]"),
                timeout=aiohttp.ClientTimeout(sock_read=0.2),
            )
        fake.script(Scenario(hang=True))
        with pytest.raises(asyncio.TimeoutError):
            await _post(session, url, _chat("hi"), timeout=aiohttp.ClientTimeout(total=0.2))
        assert time.perf_counter() - started < 5  # two 0.2 s timeouts, not the 30 s delay
        fake.script(Scenario(slow_first_byte=0.05))
        status, _, _ = await _post(session, url, _chat("hi"))
        assert status == 200


async def test_keep_alive_and_chunked_request_body() -> None:
    async with FakeOpenAIUpstream() as fake:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(fake.url.rsplit(":", 1)[1]))
        payload = json.dumps(_chat("chunked body")).encode()
        half = len(payload) // 2
        for _ in range(2):
            writer.write(
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
                b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                % (half, payload[:half], len(payload) - half, payload[half:])
            )
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            body = json.loads(await reader.readexactly(length))
            assert body["choices"][0]["message"]["content"] == "Echo: chunked body"
        writer.close()
        assert [r.headers.get("transfer-encoding") for r in fake.requests] == ["chunked"] * 2


# -- the CLI -----------------------------------------------------------------------------
def test_cli_rejects_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_mock_upstream("no-such-format", host="127.0.0.1", port=0, api_key=None) == 2
    assert "unknown format" in capsys.readouterr().err


def test_cli_serves_until_sigterm() -> None:
    code = (
        "import sys; from gatewise.testing.cli import run_mock_upstream; "
        "sys.exit(run_mock_upstream('azure', host='127.0.0.1', port=0, api_key='k'))"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split()[-1]
        assert url.startswith("http://127.0.0.1:")
        client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
        assert client.chat.completions.create(model="m", messages=HELLO).choices
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()

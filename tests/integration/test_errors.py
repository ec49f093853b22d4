"""Every failure answers in OpenAI's envelope with the right status, over real sockets."""

from __future__ import annotations

import socket
import time

import openai
import pytest

from gatewise.testing import FakeOpenAIUpstream, Scenario
from gatewise.testing.gateway import RunningGateway
from tests.conftest import UPSTREAM_KEY, one_model_config, openai_provider
from tests.rawhttp import Reply, post, request

MODEL = "gpt-4o-mini"
HELLO = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def chat(gateway: RunningGateway, body: bytes | dict[str, object], **kwargs: object) -> Reply:
    return post(gateway.openai_base_url + "/chat/completions", body, **kwargs)  # type: ignore[arg-type]


def assert_openai_error(reply: Reply, status: int, code: str | None = None) -> dict[str, object]:
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-request-id"]
    error = reply.json["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code
    return error  # type: ignore[no-any-return]


def test_malformed_json(gateway: RunningGateway) -> None:
    error = assert_openai_error(chat(gateway, b'{"model": "x", '), 400)
    assert error["type"] == "invalid_request_error"
    assert "could not parse the JSON" in str(error["message"])


def test_wrong_type_names_the_field(gateway: RunningGateway) -> None:
    error = assert_openai_error(chat(gateway, {**HELLO, "max_tokens": "many"}), 400)
    assert error["param"] == "max_tokens"
    error = assert_openai_error(chat(gateway, {"model": MODEL}), 400)
    assert error["param"] == "messages" and "Missing required parameter" in str(error["message"])


def test_unknown_model(gateway: RunningGateway) -> None:
    error = assert_openai_error(chat(gateway, {**HELLO, "model": "gpt-9"}), 404, "model_not_found")
    assert error["param"] == "model"
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])


def test_body_over_the_limit(gateway: RunningGateway, upstream: FakeOpenAIUpstream) -> None:
    big = {**HELLO, "messages": [{"role": "user", "content": "x" * 70_000}]}
    assert_openai_error(chat(gateway, big), 413, "request_too_large")
    assert upstream.requests == []


def test_unknown_route_and_wrong_method(gateway: RunningGateway) -> None:
    assert_openai_error(post(gateway.url + "/v1/nope", {}), 404)
    reply = request("GET", gateway.openai_base_url + "/chat/completions")
    assert_openai_error(reply, 405)
    assert reply.headers["allow"] == "POST"


def test_request_id_is_taken_from_the_request(gateway: RunningGateway) -> None:
    assert (
        chat(gateway, HELLO, headers={"x-request-id": "trace-42"}).headers["x-request-id"]
        == "trace-42"
    )
    generated = chat(gateway, HELLO, headers={"x-request-id": "bad id\twith spaces"}).headers[
        "x-request-id"
    ]
    assert generated.startswith("req_")


def test_upstream_timeout_is_504(gateway: RunningGateway, upstream: FakeOpenAIUpstream) -> None:
    upstream.script(Scenario(slow_first_byte=10))
    started = time.monotonic()
    assert_openai_error(chat(gateway, HELLO), 504, "upstream_timeout")
    assert time.monotonic() - started < 4  # the 1 s first-byte timeout, not the 5 s total one


def test_upstream_that_never_answers_is_504(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(hang=True))
    assert_openai_error(chat(gateway, HELLO), 504, "upstream_timeout")


def test_unreachable_upstream_is_502(start_gateway) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    gateway = start_gateway(one_model_config(openai_provider(f"http://127.0.0.1:{closed_port}")))
    error = assert_openai_error(chat(gateway, HELLO), 502, "upstream_unavailable")
    assert "up" in str(error["message"])


@pytest.mark.parametrize("status", [400, 404, 429, 500, 503])
def test_upstream_errors_are_relayed(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream, status: int
) -> None:
    upstream.script(Scenario(status=status, error_message=f"upstream says {status}"))
    error = assert_openai_error(chat(gateway, HELLO), status)
    assert error["message"] == f"upstream says {status}"


def test_rate_limit_headers_are_relayed_and_the_sdk_retries(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(status=429, retry_after=1))
    reply = chat(gateway, HELLO)
    assert_openai_error(reply, 429)
    assert reply.headers["retry-after"] == "1"
    assert "retry-after-ms" in reply.headers
    upstream.script(Scenario(status=429, retry_after=0.1))
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=1)
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}]
    )
    assert completion.choices[0].message.content
    assert len(upstream.requests) == 3  # the 429 above, the retried 429, the success


def test_upstream_credentials_are_never_relayed(
    start_gateway, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    wrong_key = "sk-wrong-gateway-key-abcdefghijklmnop"
    monkeypatch.setenv("GW_TEST_WRONG_KEY", wrong_key)
    with __import__("gatewise.testing", fromlist=["run_in_thread"]).run_in_thread(
        FakeOpenAIUpstream(api_key=UPSTREAM_KEY)
    ) as fake:
        provider = openai_provider(fake.url, api_key="${env:GW_TEST_WRONG_KEY}")
        gateway = start_gateway(one_model_config(provider))
        reply = chat(gateway, HELLO)
        assert fake.requests[-1].headers["authorization"] == f"Bearer {wrong_key}"
    assert_openai_error(reply, 401, "invalid_api_key")
    assert wrong_key not in reply.body.decode()
    assert "wrong-gateway" not in reply.body.decode()


def test_garbage_from_upstream_is_502(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(garbage=True))
    assert_openai_error(chat(gateway, HELLO), 502, "bad_upstream_response")


def test_reset_mid_body_is_502(gateway: RunningGateway, upstream: FakeOpenAIUpstream) -> None:
    upstream.script(Scenario(reset_after=1))
    assert_openai_error(chat(gateway, HELLO), 502, "upstream_unavailable")


def stream_events(reply: Reply) -> list[bytes]:
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    return [e for e in reply.body.split(b"\n\n") if e]


def test_garbage_before_a_streams_first_chunk_is_a_plain_502(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    """Nothing reached the client yet: the stream fails like a plain call (and would fail
    over to another deployment)."""
    upstream.script(Scenario(garbage_stream=True))
    assert_openai_error(chat(gateway, {**HELLO, "stream": True}), 502, "bad_upstream_response")


@pytest.mark.parametrize(
    "scenario",
    [Scenario(reset_after=3), Scenario(chunk_delay=2.0)],
    ids=["reset", "idle-timeout"],
)
def test_mid_stream_failures_end_with_an_error_event(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream, scenario: Scenario
) -> None:
    upstream.script(scenario)
    started = time.monotonic()
    events = stream_events(chat(gateway, {**HELLO, "stream": True}))
    assert time.monotonic() - started < 5
    assert events[-1].startswith(b'data: {"error":')
    assert b"[DONE]" not in events[-1]


def test_sdk_raises_on_a_mid_stream_failure(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(reset_after=4))
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
        ):
            received.append(chunk)
    assert received, "chunks before the failure reach the client"


def test_streamed_request_with_upstream_error_gets_a_plain_error(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(status=503))
    assert_openai_error(chat(gateway, {**HELLO, "stream": True}), 503)


def test_client_disconnect_cancels_the_upstream_call(start_gateway) -> None:  # type: ignore[no-untyped-def]
    from gatewise.testing import run_in_thread

    with run_in_thread(FakeOpenAIUpstream(api_key=UPSTREAM_KEY)) as fake:
        gateway = start_gateway(one_model_config(openai_provider(fake.url)))
        for stream in (False, True):
            fake.script(Scenario(hang=True) if not stream else Scenario(chunk_delay=0.5, chunks=50))
            port = int(gateway.url.rsplit(":", 1)[1])
            body = (
                b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"stream":'
                + (b"true" if stream else b"false")
                + b"}"
            )
            client = socket.create_connection(("127.0.0.1", port))
            client.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            deadline = time.monotonic() + 3
            while fake.open_connections == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert fake.open_connections == 1, "the upstream call is in flight"
            time.sleep(0.3)
            client.close()
            deadline = time.monotonic() + 3
            while fake.open_connections and time.monotonic() < deadline:
                time.sleep(0.02)
            assert fake.open_connections == 0, "the upstream connection was closed with the client"


def test_failover_to_the_next_deployment(start_gateway, upstream: FakeOpenAIUpstream) -> None:  # type: ignore[no-untyped-def]
    config = {
        "auth": {"mode": "open"},
        "providers": {"a": openai_provider(upstream.url), "b": openai_provider(upstream.url)},
        "models": [
            {
                "name": MODEL,
                "deployments": [
                    {"provider": "a", "model": "first"},
                    {"provider": "b", "model": "second"},
                ],
            }
        ],
    }
    gateway = start_gateway(config)
    upstream.script(Scenario(status=503))
    reply = chat(gateway, HELLO)
    assert reply.status == 200
    assert [r.json["model"] for r in upstream.requests] == ["first", "second"]
    upstream.reset()
    upstream.script(Scenario(status=400))
    assert chat(gateway, HELLO).status == 400  # not retryable: no failover
    assert len(upstream.requests) == 1

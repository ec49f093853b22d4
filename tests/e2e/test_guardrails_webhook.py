"""A ``webhook`` custom guardrail against a small HTTP service on loopback: its findings
block, a slow answer past ``timeout_ms`` fails closed by default and passes with
``on_error: open``, and a broken answer counts as an error too."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

from gatewise.testing import FakeOpenAIUpstream
from gatewise.testing.gateway import RunningGateway
from tests.e2e.guardrail_support import guarded_config, module_gateway, oai, rule

SLOW_SECONDS = 1.0


class Service(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.received: list[dict[str, Any]] = []
        self.headers_seen: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/scan"


class Handler(BaseHTTPRequestHandler):
    server: Service

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.received.append(body)
        self.server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        text: str = body["text"]
        if "slow" in text:
            time.sleep(SLOW_SECONDS)
        if "broken" in text:
            answer = b"<html>oops</html>"
        elif "forbidden" in text:
            start = text.index("forbidden")
            finding = {
                "category": "house_rule",
                "score": 0.9,
                "spans": [{"start": start, "end": start + 9, "type": "WORD"}],
            }
            answer = json.dumps({"findings": [finding]}).encode()
        else:
            answer = b'{"findings": []}'
        try:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway stopped waiting (a slow answer past its timeout)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    server = Service()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def gw(fake_openai: FakeOpenAIUpstream, service: Service) -> Iterator[RunningGateway]:
    hook = {"type": "webhook", "url": service.url, "timeout_ms": 200}
    config = guarded_config(
        fake_openai.url,
        {
            "closed": {"rules": [rule("house")]},
            "open": {"rules": [rule("house_open")]},
            "output": {"rules": [rule("house", on="output")]},
        },
        custom={
            "house": {**hook, "headers": {"x-service-token": "${env:GW_TEST_HOOK_TOKEN}"}},
            "house_open": {**hook, "on_error": "open"},
        },
    )
    patch = pytest.MonkeyPatch()
    patch.setenv("GW_TEST_HOOK_TOKEN", "t0ken")
    try:
        with module_gateway(config) as gateway:
            yield gateway
    finally:
        patch.undo()


@pytest.fixture
def received(service: Service) -> list[dict[str, Any]]:
    service.received.clear()
    return service.received


def say(gw: RunningGateway, model: str, text: str) -> str | None:
    reply = oai(gw).chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}]
    )
    return reply.choices[0].message.content


def blocked(gw: RunningGateway, model: str, text: str) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        say(gw, model, text)
    assert caught.value.type == "guardrail_violation"
    return caught.value


def test_the_service_gets_each_text_and_its_findings_block(
    gw: RunningGateway,
    upstream: FakeOpenAIUpstream,
    received: list[dict[str, Any]],
    service: Service,
) -> None:
    error = blocked(gw, "closed", "this is forbidden here")
    assert "forbidden" not in error.message  # the verdict names no value
    assert error.code == "house" and "house_rule" in error.message
    assert received == [{"text": "this is forbidden here", "role": "user", "guardrail": "house"}]
    assert service.headers_seen[-1]["x-service-token"] == "t0ken"
    assert upstream.request_count == 0
    assert say(gw, "closed", "all fine") == "Echo: all fine"
    assert upstream.request_count == 1


def test_a_slow_service_fails_closed_by_default(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, received: list[dict[str, Any]]
) -> None:
    started = time.perf_counter()
    error = blocked(gw, "closed", "a slow one")
    elapsed = time.perf_counter() - started
    assert error.code == "house" and "service_unavailable" in error.message
    assert elapsed < SLOW_SECONDS, elapsed  # the 200 ms timeout, not the service's second
    assert upstream.request_count == 0
    # The connection given up on is not reused for the next texts: they are answered.
    for _ in range(3):
        assert say(gw, "closed", "all fine") == "Echo: all fine"
    assert blocked(gw, "closed", "forbidden again").code == "house"


def test_a_slow_service_passes_with_on_error_open(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, received: list[dict[str, Any]]
) -> None:
    started = time.perf_counter()
    assert say(gw, "open", "a slow one") == "Echo: a slow one"
    assert time.perf_counter() - started < SLOW_SECONDS
    assert received and received[-1]["guardrail"] == "house_open"
    assert upstream.request_count == 1
    error = blocked(gw, "open", "still forbidden")  # findings block though errors pass
    assert error.code == "house_open"


def test_a_broken_answer_fails_closed(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, received: list[dict[str, Any]]
) -> None:
    error = blocked(gw, "closed", "a broken answer")
    assert "service_unavailable" in error.message
    assert say(gw, "open", "a broken answer") == "Echo: a broken answer"


def test_the_webhook_reads_replies_on_output(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, received: list[dict[str, Any]]
) -> None:
    from gatewise.testing import Scenario

    upstream.script(Scenario(content="that is forbidden"))
    error = blocked(gw, "output", "hello")
    assert error.code == "house"
    assert received[-1]["role"] == "assistant" and received[-1]["text"] == "that is forbidden"
    assert upstream.request_count == 1

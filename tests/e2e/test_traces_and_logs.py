"""Traces and logs of a real ``gatewise serve`` process, driven by the official SDKs.

The gateway exports its spans over OTLP/HTTP to a loopback receiver that decodes the
protobuf; its stderr is the JSON log. Then both are grepped for every key, secret and
masked value the test used: none may appear (the collector's own token travels only in
the export request's header, as configured).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest

from gatewise.testing import FakeOpenAIUpstream, run_in_thread
from gatewise.testing.otlp_receiver import OTLPReceiver
from tests.conftest import UPSTREAM_KEY, openai_provider
from tests.e2e.test_cli import GATEWISE, free_port, stop, wait_ready
from tests.identity_seed import one_key, with_store

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
OTLP_TOKEN = "Bearer otlp-collector-secret-7f3a9c2e51"
EMAIL = "jane.doe@example.com"
WRONG_KEY = "gw-not-a-real-key-0123456789abcdef0123456789"
MODEL = "gpt-4o-mini"


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with run_in_thread(OTLPReceiver()) as started:
        yield started


@pytest.fixture
def fake() -> Iterator[FakeOpenAIUpstream]:
    with run_in_thread(FakeOpenAIUpstream(api_key=UPSTREAM_KEY)) as started:
        yield started


def write_config(tmp_path: Path, upstream: str, collector: str) -> tuple[Path, str]:
    """The gateway's config (keys, a masking guardrail, traces, JSON request logs) and a key."""
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, one_key)
    mask = {"guardrail": "pii", "on": "input", "action": "mask", "mask": "placeholder"}
    config: dict[str, Any] = {
        "auth": {"mode": "keys"},
        "store": {"url": store_url},
        "providers": {"up": openai_provider(upstream)},
        "models": [{"name": MODEL, "deployments": [{"provider": "up", "model": MODEL}]}],
        "guardrails": {
            "profiles": {"masked": {"rules": [mask]}},
            "assign": {"models": {MODEL: "masked"}},
        },
        "observability": {
            "tracing": {
                "enabled": True,
                "endpoint": collector,
                "headers": {"authorization": "${env:GW_TEST_OTLP_TOKEN}"},
                "service_name": "gatewise-e2e",
            },
            "logs": {"requests": True, "format": "json", "level": "info"},
        },
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config))  # (JSON is YAML)
    return path, key


def test_spans_and_logs_tell_the_story_and_never_a_secret(
    tmp_path: Path,
    fake: FakeOpenAIUpstream,
    receiver: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GW_TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    monkeypatch.setenv("GW_TEST_OTLP_TOKEN", OTLP_TOKEN)
    config, key = write_config(tmp_path, fake.url, receiver.endpoint)
    port, log = free_port(), tmp_path / "gateway.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*GATEWISE, "serve", "--config", str(config), "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/readyz", process)
        client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
        caller = {"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "vendor=opaque"}
        prompt = [{"role": "user", "content": f"Write to {EMAIL} please"}]
        reply = client.chat.completions.create(model=MODEL, messages=prompt, extra_headers=caller)  # type: ignore[arg-type]
        assert reply.choices[0].message.content
        stream = client.chat.completions.create(model=MODEL, messages=prompt, stream=True)  # type: ignore[arg-type]
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        claude = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)
        message = claude.messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "Hi there"}]
        )
        assert message.content
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url + "/v1", api_key=WRONG_KEY, max_retries=0).models.list()
        upstream_saw = fake.requests[0].headers["traceparent"]
        assert upstream_saw.startswith(f"00-{TRACE}-") and upstream_saw.endswith("-01")
        spans = receiver.wait_for(6)  # 3 model calls: a server and a client span each, at least
    finally:
        assert stop(process) == 0
    spans = receiver.spans  # (the clean stop flushed the rest)
    ours = [s for s in spans if s.trace_id == TRACE]
    server = next(s for s in ours if s.kind == 2)
    client_span = next(s for s in ours if s.kind == 3)
    guard = next(s for s in ours if s.name == "apply_guardrail")
    assert server.parent_span_id == PARENT and server.trace_state == "vendor=opaque"
    assert server.name == f"chat {MODEL}" and server.resource["service.name"] == "gatewise-e2e"
    assert client_span.span_id == upstream_saw.split("-")[2]
    assert client_span.attributes["gen_ai.usage.input_tokens"] > 0
    assert guard.parent_span_id == server.span_id
    assert guard.attributes["gatewise.guardrail.action"] == "mask"
    assert guard.attributes["gatewise.guardrail.found"] == ("EMAIL",)
    assert {s.attributes.get("gen_ai.operation.name") for s in spans if s.kind == 2} >= {"chat"}
    assert all(h.get("authorization") == OTLP_TOKEN for h, _body in receiver.exports)

    lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    requests = [e for e in lines if e.get("logger") == "gatewise" and "status" in e]
    traced = next(e for e in requests if e.get("trace_id") == TRACE)
    assert traced["request_id"].startswith("req_") and traced["level"] == "info"
    assert traced["status"] == 200 and traced["model"] == MODEL
    assert all(len(e["trace_id"]) == 32 and e["request_id"] for e in requests)
    assert any(e["status"] == 401 for e in requests)

    exported = b"\n".join(body for _headers, body in receiver.exports)
    logged = log.read_bytes()
    for secret in (key, UPSTREAM_KEY, OTLP_TOKEN, "otlp-collector-secret", EMAIL, WRONG_KEY):
        assert secret.encode() not in logged, f"{secret!r} in the logs"
        assert secret.encode() not in exported, f"{secret!r} in the spans"

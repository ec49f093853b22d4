"""Each provider's addressing and authentication, against the fake upstream's real routes."""

from __future__ import annotations

import base64
import struct

import openai
import pytest

from gatewise.testing import FakeOpenAIUpstream
from tests.conftest import UPSTREAM_KEY
from tests.rawhttp import post

HELLO = [{"role": "user", "content": "hello"}]


def config_for(provider: dict[str, object], model: str = "dep-1") -> dict[str, object]:
    return {
        "auth": {"mode": "open"},
        "providers": {"p": provider},
        "models": [
            {"name": "chat", "deployments": [{"provider": "p", "model": model}]},
            {"name": "embed", "deployments": [{"provider": "p", "model": "emb-dep"}]},
        ],
    }


def test_azure_deployments_style(
    start_gateway, upstream: FakeOpenAIUpstream, upstream_key_env: str
) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(
        config_for(
            {
                "type": "azure",
                "endpoint": upstream.url,
                "api_key": upstream_key_env,
                "api_version": "2024-10-21",
            }
        )
    )
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0)
    completion = client.chat.completions.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
    assert completion.choices[0].message.content
    sent = upstream.requests[-1]
    assert sent.path == "/openai/deployments/dep-1/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == UPSTREAM_KEY
    assert "authorization" not in sent.headers
    chunks = list(client.chat.completions.create(model="chat", messages=HELLO, stream=True))  # type: ignore[arg-type]
    assert chunks and upstream.requests[-1].path.endswith("/dep-1/chat/completions")
    assert all(c.choices for c in chunks)  # Azure's prompt-filter event is not passed on
    vectors = client.embeddings.create(model="embed", input="x")
    assert vectors.data[0].embedding
    assert upstream.requests[-1].path == "/openai/deployments/emb-dep/embeddings"


def test_azure_v1_style(start_gateway, upstream: FakeOpenAIUpstream, upstream_key_env: str) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(
        config_for(
            {
                "type": "azure",
                "endpoint": upstream.url + "/",
                "api_key": upstream_key_env,
                "api_style": "v1",
            }
        )
    )
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0)
    assert client.chat.completions.create(model="chat", messages=HELLO).choices  # type: ignore[arg-type]
    sent = upstream.requests[-1]
    assert sent.path == "/openai/v1/chat/completions"
    assert sent.query == {}
    assert sent.json["model"] == "dep-1"
    assert sent.headers["api-key"] == UPSTREAM_KEY


def test_openai_compatible_without_key_and_local_base64(start_gateway) -> None:  # type: ignore[no-untyped-def]
    from gatewise.testing import run_in_thread

    with run_in_thread(FakeOpenAIUpstream()) as fake:  # like a local vLLM: no key needed
        gateway = start_gateway(
            config_for({"type": "openai-compatible", "base_url": fake.url + "/v1"})
        )
        client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0)
        assert client.chat.completions.create(model="chat", messages=HELLO).choices  # type: ignore[arg-type]
        assert "authorization" not in fake.requests[-1].headers
        result = client.embeddings.create(model="embed", input=["a", "b"])  # SDK asks for base64
        assert fake.requests[-1].json["encoding_format"] == "float"  # the gateway asked for floats
        reply = post(
            gateway.openai_base_url + "/embeddings",
            {"model": "embed", "input": "a", "encoding_format": "base64"},
        )
        encoded = reply.json["data"][0]["embedding"]
        raw = base64.b64decode(encoded)
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == pytest.approx(
            result.data[0].embedding
        )


def test_extra_headers_and_organization(
    start_gateway,
    upstream: FakeOpenAIUpstream,
    upstream_key_env: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GW_TEST_TENANT_HEADER", "tenant-7")
    provider = {
        "type": "openai",
        "base_url": upstream.url + "/v1",
        "api_key": upstream_key_env,
        "organization": "org-1",
        "project": "proj-1",
        "headers": {"x-tenant": "${env:GW_TEST_TENANT_HEADER}", "x-static": "yes"},
    }
    gateway = start_gateway(config_for(provider))
    assert (
        post(
            gateway.openai_base_url + "/chat/completions", {"model": "chat", "messages": HELLO}
        ).status
        == 200
    )
    headers = upstream.requests[-1].headers
    assert (headers["x-tenant"], headers["x-static"]) == ("tenant-7", "yes")
    assert (headers["openai-organization"], headers["openai-project"]) == ("org-1", "proj-1")


def test_mock_provider_forced_failures(start_gateway) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(
        config_for({"type": "mock", "fail": {"status": 429, "message": "slow down", "every": 2}})
    )
    statuses = [
        post(
            gateway.openai_base_url + "/chat/completions", {"model": "chat", "messages": HELLO}
        ).status
        for _ in range(4)
    ]
    assert statuses == [200, 429, 200, 429]


def test_mock_provider_is_deterministic_and_streams_the_configured_chunks(start_gateway) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(config_for({"type": "mock", "stream_chunks": 5, "reply": "abcdefghij"}))
    client = openai.OpenAI(base_url=gateway.openai_base_url, api_key="k", max_retries=0)
    first = client.chat.completions.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
    second = client.chat.completions.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
    assert first.id == second.id and first.choices[0].message.content == "abcdefghij"
    chunks = list(client.chat.completions.create(model="chat", messages=HELLO, stream=True))  # type: ignore[arg-type]
    contents = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert contents == ["ab", "cd", "ef", "gh", "ij"]
    vectors = client.embeddings.create(model="embed", input="same")
    again = client.embeddings.create(model="embed", input="same")
    assert vectors.data[0].embedding == again.data[0].embedding

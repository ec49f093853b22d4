"""Prompt endpoints through a real gateway (real sockets) in front of the OpenAI fake.

Plain and streamed answers, pinned versions and the canary, input errors before any
model call, the OpenAPI document, deprecation headers, and access by key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from gatewise.store.identity import IdentityStore
from gatewise.testing import FakeOpenAIUpstream, Scenario
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from tests.conftest import UPSTREAM_KEY, openai_provider
from tests.identity_seed import ACTOR, with_store
from tests.rawhttp import Reply, request

OUTPUT = {
    "type": "object",
    "required": ["sentiment"],
    "additionalProperties": False,
    "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]}},
}
INPUT = {
    "type": "object",
    "required": ["message"],
    "additionalProperties": False,
    "properties": {"message": {"type": "string", "minLength": 1}},
}


def prompt(**fields: Any) -> dict[str, Any]:
    return {
        "name": "sentiment",
        "model": "gpt-4o-mini",
        "template": "Classify: {{ message }}",
        "input_schema": INPUT,
        "output_schema": OUTPUT,
        **fields,
    }


async def seed(store: IdentityStore) -> dict[str, str]:
    tenant = await store.create_tenant(ACTOR, name="acme")
    keys = {}
    lists = {
        "all": None,
        "sentiment": ["prompt:sentiment", "gpt-4o-mini"],
        "summary-only": ["prompt:summary", "gpt-4o-mini"],
    }
    for name, allowed in lists.items():
        app = await store.create_app(ACTOR, tenant_id=tenant.id, name=name)
        _, keys[name] = await store.create_key(
            ACTOR, name=name, app_id=app.id, allowed_models=allowed
        )
    app = await store.create_app(ACTOR, tenant_id=tenant.id, name="approved")
    _, keys["approved"] = await store.create_key(ACTOR, name="approved", app_id=app.id)
    asked = await store.request_subscription(ACTOR, app_id=app.id, model="prompt:vip")
    await store.approve_subscription(ACTOR, asked.id)
    return keys


@pytest.fixture(scope="module")
def setup(
    fake_openai: FakeOpenAIUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningGateway, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("prompts")
    store_url = f"sqlite+aiosqlite:///{folder}/gatewise.db"
    keys = with_store(store_url, seed)
    (folder / "summary.yaml").write_text(
        "name: summary\nmodel: gpt-4o-mini\ntemplate: 'Summarise: {{ text }}'\n"
        "input_schema: {type: object, required: [text]}\n"
    )
    config = {
        "auth": {"mode": "keys", "refresh_seconds": 0.2},
        "store": {"url": store_url},
        "providers": {"up": openai_provider(fake_openai.url, timeouts={"total": 5})},
        "models": [
            {"name": "gpt-4o-mini", "deployments": [{"provider": "up", "model": "gpt-4o-mini"}]}
        ],
        "prompts": {
            "folder": str(folder),
            "inline": [
                prompt(version=1, deprecated="2026-01-01", sunset="2027-01-01", weight=0),
                prompt(version=2, weight=100, parameters={"temperature": 0, "max_tokens": 7}),
                prompt(version=3, weight=0, template="Sentiment of: {{ message }}"),
                prompt(name="vip", approval="required", output_schema=None),
            ],
        },
    }
    patch = pytest.MonkeyPatch()
    patch.setenv("GW_TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    try:
        with run_gateway_in_thread(config, Path(folder)) as gateway:
            yield gateway, keys
    finally:
        patch.undo()


def call(
    setup: tuple[RunningGateway, dict[str, str]],
    path: str,
    body: Any,
    key: str = "all",
    method: str = "POST",
) -> Reply:
    gateway, keys = setup
    headers = {"authorization": f"Bearer {keys[key]}"}
    return request(method, gateway.url + path, body, headers=headers)


def chats(upstream: FakeOpenAIUpstream) -> list[dict[str, Any]]:
    return [r.json for r in upstream.requests if r.path.endswith("/chat/completions")]


def test_a_prompt_answers_with_its_output_json(setup: Any, upstream: FakeOpenAIUpstream) -> None:
    upstream.script(Scenario(content='{"sentiment": "negative"}'))
    reply = call(setup, "/api/sentiment", {"message": "The box was broken."})
    assert reply.status == 200, reply.body
    assert reply.json == {"sentiment": "negative"}
    assert reply.headers["x-gatewise-prompt-version"] == "2"  # the canary has weight 100
    [sent] = chats(upstream)
    assert sent["messages"] == [{"role": "user", "content": "Classify: The box was broken."}]
    limit = sent.get("max_tokens", sent.get("max_completion_tokens"))
    assert (sent["temperature"], limit) == (0, 7)
    assert sent["response_format"]["json_schema"]["schema"] == OUTPUT


def test_a_pinned_version_is_served_and_deprecation_announced(
    setup: Any, upstream: FakeOpenAIUpstream
) -> None:
    reply = call(setup, "/api/sentiment/v1", {"message": "fine"})
    assert reply.status == 200
    assert reply.headers["deprecation"] == "@1767225600"
    assert reply.headers["sunset"] == "Fri, 01 Jan 2027 00:00:00 GMT"
    assert reply.headers["x-gatewise-prompt-version"] == "1"
    assert "deprecation" not in call(setup, "/api/sentiment/v3", {"message": "x"}).headers
    assert chats(upstream)[-1]["messages"][0]["content"] == "Sentiment of: x"


def test_a_text_prompt_answers_text(setup: Any, upstream: FakeOpenAIUpstream) -> None:
    reply = call(setup, "/api/summary", {"text": "long story"})
    assert reply.status == 200
    assert reply.json == {"text": "Echo: Summarise: long story"}


def test_a_streamed_answer_is_sse_deltas_then_the_checked_output(
    setup: Any, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(pieces=('{"senti', 'ment": "pos', 'itive"}')))
    reply = call(setup, "/api/sentiment", {"message": "great", "stream": True})
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in reply.body.decode().split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    deltas = [orjson.loads(e)["delta"] for e in events[:-2]]
    assert "".join(deltas) == '{"sentiment": "positive"}' and len(deltas) == 3
    assert orjson.loads(events[-2]) == {"output": {"sentiment": "positive"}}
    assert chats(upstream)[-1]["stream"] is True


def test_a_streamed_answer_that_breaks_the_schema_ends_in_an_error_event(
    setup: Any, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(pieces=("not ", "json")))
    reply = call(setup, "/api/sentiment", {"message": "great", "stream": True})
    events = [line[6:] for line in reply.body.decode().split("\n\n") if line.startswith("data: ")]
    assert orjson.loads(events[-1])["error"]["code"] == "output_schema_mismatch"


def test_bad_input_is_refused_before_any_model_call(
    setup: Any, upstream: FakeOpenAIUpstream
) -> None:
    for body, param in (
        ({}, "message"),
        ({"message": 5}, "message"),
        ({"message": "a", "x": 1}, "x"),
    ):
        reply = call(setup, "/api/sentiment", body)
        assert reply.status == 400
        error = reply.json["error"]
        assert (error["param"], error["code"]) == (param, "invalid_input")
    assert (
        call(setup, "/api/sentiment", {"message": "a", "stream": "yes"}).json["error"]["param"]
        == "stream"
    )
    assert call(setup, "/api/sentiment", b"[1]").status == 400
    assert chats(upstream) == []


def test_a_bad_answer_is_repaired_once(setup: Any, upstream: FakeOpenAIUpstream) -> None:
    upstream.script(
        Scenario(content='{"sentiment": "meh"}'), Scenario(content='{"sentiment": "neutral"}')
    )
    reply = call(setup, "/api/sentiment", {"message": "ok"})
    assert reply.status == 200 and reply.json == {"sentiment": "neutral"}
    repair = chats(upstream)[-1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"sentiment": "meh"}'}
    assert "must be one of" in repair[-1]["content"]


def test_access_follows_the_keys_allow_list(setup: Any, upstream: FakeOpenAIUpstream) -> None:
    assert call(setup, "/api/sentiment", {"message": "hi"}, key="sentiment").status == 200
    refused = call(setup, "/api/sentiment", {"message": "hi"}, key="summary-only")
    assert refused.status == 403
    assert refused.json["error"]["code"] == "prompt_not_allowed"
    assert len(chats(upstream)) == 1
    listed = call(setup, "/v1/prompts", None, key="summary-only", method="GET").json
    assert [p["name"] for p in listed["data"]] == ["summary"]
    hidden = call(setup, "/v1/prompts/sentiment", None, key="summary-only", method="GET")
    assert hidden.status == 404
    assert request("POST", setup[0].url + "/api/sentiment", {"message": "hi"}).status == 401


def test_a_prompt_is_described_without_its_template(
    setup: Any, upstream: FakeOpenAIUpstream
) -> None:
    call(setup, "/api/sentiment/v2", {"message": "counted"})
    described = call(setup, "/v1/prompts/sentiment", None, method="GET").json
    assert described["serving"] == [2]
    assert [v["version"] for v in described["versions"]] == [1, 2, 3]
    assert described["versions"][0]["deprecated"] is True
    assert described["versions"][1]["outcomes"]["success"] >= 1
    assert "Classify" not in orjson.dumps(described).decode()


def test_the_openapi_document_is_valid_and_complete(
    setup: Any, upstream: FakeOpenAIUpstream
) -> None:
    document = call(setup, "/api/openapi.json", None, method="GET").json
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/api/sentiment",
        "/api/sentiment/v1",
        "/api/sentiment/v2",
        "/api/sentiment/v3",
        "/api/summary",
        "/api/summary/v1",
    }  # not /api/vip: this key's app has no approved subscription to it
    operation = document["paths"]["/api/sentiment/v1"]["post"]
    assert operation["deprecated"] is True
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["stream"] == {"type": "boolean", "default": False}
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    Draft202012Validator.check_schema(answer)
    Draft202012Validator(answer).validate({"sentiment": "positive"})
    ids = [op["post"]["operationId"] for op in document["paths"].values()]
    assert len(ids) == len(set(ids))


def test_an_approval_prompt_needs_an_approved_subscription(
    setup: Any, upstream: FakeOpenAIUpstream
) -> None:
    refused = call(setup, "/api/vip", {"message": "hi"})
    assert refused.status == 403
    assert refused.json["error"]["code"] == "subscription_required"
    assert upstream.requests == []
    assert call(setup, "/api/vip", {"message": "hi"}, key="approved").status == 200
    document = call(setup, "/api/openapi.json", None, key="approved", method="GET").json
    assert "/api/vip" in document["paths"]

"""``POST /v1/guardrails/check``: the documented answer, code-point spans, masking,
keys, unknown profiles, and the output side (assistant text) — in keys mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from gatewise.store.identity import IdentityStore
from gatewise.testing import FakeOpenAIUpstream
from gatewise.testing.gateway import RunningGateway
from tests.conftest import openai_provider
from tests.e2e.guardrail_support import EMAIL, INJECTION, UPSTREAM_MODEL, module_gateway, rule
from tests.identity_seed import ACTOR, one_key, with_store
from tests.rawhttp import Reply, request


class World(NamedTuple):
    gateway: RunningGateway
    key: str
    limited: str  # the key of tenant ``limited`` (2 requests a minute)


API_KEY = "sk-" + "Zy9xW8vU7tS6rQ5pO4nM3lK2"


@pytest.fixture(scope="module")
def world(
    fake_openai: FakeOpenAIUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    store_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('check')}/gatewise.db"
    key = with_store(store_url, one_key)
    limited = with_store(store_url, limited_key)
    config = {
        "auth": {"mode": "keys", "refresh_seconds": 0.2},
        "store": {"url": store_url},
        "providers": {"up": openai_provider(fake_openai.url)},
        "models": [
            {"name": UPSTREAM_MODEL, "deployments": [{"provider": "up", "model": UPSTREAM_MODEL}]}
        ],
        "limits": [
            {"name": "checks", "per": "key", "requests_per_minute": 2, "tenants": ["limited"]}
        ],
        # A USD budget over everyone: a check costs nothing, so it is never refused as unpriced.
        "budgets": [{"name": "spend", "per": "tenant", "usd": "10", "period": "month"}],
        "guardrails": {
            "profiles": {
                "flagging": {"rules": [rule("pii", action="flag"), rule("secrets", on="output")]},
            },
        },
    }
    with module_gateway(config) as gateway:
        yield World(gateway, key, limited)


async def limited_key(store: IdentityStore) -> str:
    tenant = await store.create_tenant(ACTOR, name="limited")
    app = await store.create_app(ACTOR, tenant_id=tenant.id, name="a")
    _, key = await store.create_key(ACTOR, name="k", app_id=app.id)
    return key


def check(world: World, body: dict[str, Any], key: str | None = None) -> Reply:
    headers = {"authorization": f"Bearer {key if key is not None else world.key}"}
    return request("POST", world.gateway.url + "/v1/guardrails/check", body, headers=headers)


def test_spans_are_code_points_and_the_output_is_masked(
    world: World,
) -> None:
    text = f"😀🎉 write to {EMAIL} today"
    reply = check(world, {"input": text})
    assert reply.status == 200, reply.body
    answer = reply.json
    assert answer["flagged"] is True and answer["action"] == "mask"
    assert answer["profile"] == "standard"  # the default check profile
    (result,) = answer["results"]
    assert result["guardrail"] == "pii" and result["category"] == "EMAIL"
    assert result["action"] == "mask" and 0 < result["score"] <= 1
    start = text.index(EMAIL)  # 12 code points; 14 in UTF-16, 18 in UTF-8
    assert result["spans"] == [{"start": start, "end": start + len(EMAIL), "type": "EMAIL"}]
    assert text[result["spans"][0]["start"] : result["spans"][0]["end"]] == EMAIL
    assert answer["output"] == "😀🎉 write to <EMAIL_1> today"
    assert "index" not in result


def test_an_injection_blocks(world: World) -> None:
    answer = check(world, {"input": INJECTION}).json
    assert answer["flagged"] is True and answer["action"] == "block"
    assert {(r["guardrail"], r["action"]) for r in answer["results"]} == {
        ("prompt_injection", "block")
    }
    assert answer["results"][0]["category"]  # the attack family, e.g. instruction_override
    assert answer["output"] == INJECTION


def test_clean_text_is_allowed(world: World) -> None:
    answer = check(world, {"input": "What is the boiling point of water?"}).json
    assert answer == {
        "flagged": False,
        "action": "allow",
        "results": [],
        "profile": "standard",
        "output": "What is the boiling point of water?",
    }


def test_a_message_list_gets_indexes_and_one_numbering(world: World) -> None:
    messages = [
        {"role": "user", "content": f"I am {EMAIL}"},
        {"role": "assistant", "content": f"Your key {API_KEY} is safe"},
        {"role": "user", "content": [{"type": "text", "text": f"again {EMAIL}"}]},
    ]
    answer = check(world, {"input": messages}).json
    # standard reads no replies (a model cannot leak what its input never held), so the
    # assistant's message passes as it is; strict reads it.
    assert [(r["index"], r["guardrail"]) for r in answer["results"]] == [(0, "pii"), (2, "pii")]
    assert answer["output"] == [
        {"role": "user", "content": "I am <EMAIL_1>"},
        {"role": "assistant", "content": f"Your key {API_KEY} is safe"},
        {"role": "user", "content": "again <EMAIL_1>"},
    ]
    strict = check(world, {"input": messages, "profile": "strict"}).json
    assert [(r["index"], r["guardrail"]) for r in strict["results"]] == [
        (0, "pii"),
        (1, "secrets"),
        (2, "pii"),
    ]
    assert strict["action"] == "block"  # strict blocks secrets, in replies too


def test_a_named_profile_and_assistant_role(world: World) -> None:
    flagged = check(world, {"input": f"I am {EMAIL}", "profile": "flagging"}).json
    assert flagged["action"] == "flag" and flagged["output"] == f"I am {EMAIL}"
    assert flagged["profile"] == "flagging"
    output = check(
        world, {"input": f"key {API_KEY}", "profile": "flagging", "role": "assistant"}
    ).json
    assert output["action"] == "block" and output["results"][0]["guardrail"] == "secrets"
    as_user = check(world, {"input": f"key {API_KEY}", "profile": "flagging"}).json
    assert as_user["action"] == "allow"  # secrets reads output only in this profile


def test_an_unknown_profile_is_a_400_in_openai_envelope(
    world: World,
) -> None:
    reply = check(world, {"input": "hi", "profile": "nope"})
    assert reply.status == 400
    error = reply.json["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == "profile"
    assert "nope" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": 3}, "input"),
        ({"input": []}, "input"),
        ({"input": "x", "role": "robot"}, "role"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
    ],
)
def test_bad_bodies_are_400(world: World, body: dict[str, Any], param: str) -> None:
    reply = check(world, body)
    assert reply.status == 400
    assert reply.json["error"]["param"] == param


def test_a_check_needs_a_key(world: World) -> None:
    anonymous = request("POST", world.gateway.url + "/v1/guardrails/check", {"input": "hi"})
    assert anonymous.status == 401
    assert anonymous.json["error"]["type"] in ("invalid_request_error", "authentication_error")
    assert check(world, {"input": "hi"}, key="gw-wrong-key").status == 401
    assert check(world, {"input": "hi"}).status == 200


def test_checks_count_against_the_callers_request_limits(
    world: World,
) -> None:
    statuses = [check(world, {"input": "hi"}, key=world.limited).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = check(world, {"input": "hi"}, key=world.limited)
    assert refused.status == 429 and "retry-after" in refused.headers
    assert check(world, {"input": "hi"}).status == 200  # other callers are not limited

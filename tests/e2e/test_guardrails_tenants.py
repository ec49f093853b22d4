"""Who gets which profile, in keys mode: tenants, keys, models and the default; and
what a blocked call costs (nothing: its admission is released, its usage is zero).

Tenant ``a`` runs ``strict``, tenant ``b`` runs ``off`` (one of b's keys is assigned
``inject`` by id, the most specific), model ``shielded`` runs ``inject`` for everyone
else, and every other call runs the default ``mask`` (placeholders for PII).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest

from gatewise.store.identity import IdentityStore
from gatewise.store.usage import UsageRepository, UsageRow
from gatewise.testing import FakeOpenAIUpstream, Scenario
from gatewise.testing.gateway import RunningGateway
from tests.conftest import openai_provider
from tests.e2e.guardrail_support import (
    EMAIL,
    INJECTION,
    UPSTREAM_MODEL,
    chat_requests,
    module_gateway,
    oai,
    rule,
)
from tests.identity_seed import ACTOR, with_store

BUDGET_TOKENS = 400


@dataclass
class World:
    gateway: RunningGateway
    keys: dict[str, str]
    tenants: dict[str, str]  # name -> id


async def seed(store: IdentityStore) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    keys: dict[str, str] = {}
    key_ids: dict[str, str] = {}
    tenants: dict[str, str] = {}
    for tenant_name, key_names in (("a", ["a"]), ("b", ["b", "b-special"]), ("c", ["c"])):
        tenant = await store.create_tenant(ACTOR, name=tenant_name)
        tenants[tenant_name] = tenant.id
        app = await store.create_app(ACTOR, tenant_id=tenant.id, name="app")
        for name in key_names:
            record, keys[name] = await store.create_key(ACTOR, name=name, app_id=app.id)
            key_ids[name] = record.id
    return keys, key_ids, tenants


@pytest.fixture(scope="module")
def world(
    fake_openai: FakeOpenAIUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    store_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('guard')}/gatewise.db"
    keys, key_ids, tenants = with_store(store_url, seed)
    deployment = [{"provider": "up", "model": UPSTREAM_MODEL}]
    config = {
        "auth": {"mode": "keys", "refresh_seconds": 0.2},
        "store": {"url": store_url},
        "providers": {"up": openai_provider(fake_openai.url)},
        "models": [
            {"name": UPSTREAM_MODEL, "deployments": deployment},
            {"name": "shielded", "deployments": deployment},
            {"name": "single", "deployments": deployment},
            {
                "name": "priced",
                "deployments": [
                    {
                        **deployment[0],
                        "price": {"input_per_million": "1000", "output_per_million": "2000"},
                    }
                ],
            },
        ],
        "limits": [{"name": "one", "per": "key", "concurrent": 1, "models": ["single"]}],
        "budgets": [
            {
                "name": "small",
                "per": "key",
                "tokens": BUDGET_TOKENS,
                "period": "day",
                "models": ["priced"],
            },
        ],
        "guardrails": {
            "default": "mask",
            "profiles": {
                "inject": {"rules": [rule("prompt_injection")]},
                "mask": {"rules": [rule("pii", action="mask")]},
            },
            "assign": {
                "tenants": {"a": "strict", "b": "off"},
                "keys": {key_ids["b-special"]: "inject"},
                "models": {"shielded": "inject"},
            },
        },
    }
    with module_gateway(config) as gateway:
        yield World(gateway, keys, tenants)


def ask(world: World, key: str, text: str, model: str = UPSTREAM_MODEL) -> str | None:
    reply = oai(world.gateway, world.keys[key]).chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], max_tokens=20
    )
    return reply.choices[0].message.content


def refused(world: World, key: str, text: str, model: str = UPSTREAM_MODEL) -> str:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(world, key, text, model)
    assert caught.value.type == "guardrail_violation"
    return str(caught.value.code)


def test_the_same_prompt_is_blocked_for_tenant_a_and_passes_for_tenant_b(
    world: World, upstream: FakeOpenAIUpstream
) -> None:
    assert refused(world, "a", INJECTION) == "prompt_injection"
    assert upstream.request_count == 0
    assert ask(world, "b", INJECTION) == f"Echo: {INJECTION}"
    assert upstream.request_count == 1


def test_a_tenant_assignment_beats_a_model_assignment(
    world: World, upstream: FakeOpenAIUpstream
) -> None:
    assert ask(world, "b", INJECTION, model="shielded") == f"Echo: {INJECTION}"  # b: off
    assert refused(world, "c", INJECTION, model="shielded") == "prompt_injection"  # model
    assert upstream.request_count == 1


def test_a_key_assignment_beats_its_tenant(world: World, upstream: FakeOpenAIUpstream) -> None:
    assert refused(world, "b-special", INJECTION) == "prompt_injection"
    assert upstream.request_count == 0


def test_unassigned_calls_get_the_default_profile(
    world: World, upstream: FakeOpenAIUpstream
) -> None:
    assert ask(world, "c", f"Mail {EMAIL}") == f"Echo: Mail {EMAIL}"
    assert chat_requests(upstream)[-1]["messages"][-1]["content"] == "Mail <EMAIL_1>"
    assert ask(world, "c", INJECTION) == f"Echo: {INJECTION}"  # mask does not block
    assert ask(world, "b", f"Mail {EMAIL}") == f"Echo: Mail {EMAIL}"
    assert chat_requests(upstream)[-1]["messages"][-1]["content"] == f"Mail {EMAIL}"  # b: off


def test_tenant_a_strict_masks_pii_and_adds_a_canary(
    world: World, upstream: FakeOpenAIUpstream
) -> None:
    assert ask(world, "a", f"Mail {EMAIL}") == f"Echo: Mail {EMAIL}"
    messages = chat_requests(upstream)[-1]["messages"]
    assert messages[-1]["content"] == "Mail <EMAIL_1>"
    assert messages[0]["role"] == "system" and "gw-canary-" in messages[0]["content"]


def test_strict_redacts_a_new_email_in_the_reply_but_restores_the_callers(
    world: World, upstream: FakeOpenAIUpstream
) -> None:
    upstream.script(Scenario(content="Wrote <EMAIL_1>, cc eve@evil.test."))
    assert ask(world, "a", f"Mail {EMAIL}") == f"Wrote {EMAIL}, cc [EMAIL]."


def test_a_stream_stopped_mid_way_frees_its_concurrency_slot(
    world: World, upstream: FakeOpenAIUpstream
) -> None:
    key = "sk-" + "Qw3rTy7uIo9pAs2dFg4hJk6l"
    client = oai(world.gateway, world.keys["a"])
    for _ in range(3):  # were the slot kept, the second stream would be a 429
        upstream.script(Scenario(pieces=("Here: ", key[:8], key[8:], " ok")))
        stream = client.chat.completions.create(
            model="single", messages=[{"role": "user", "content": "key?"}], stream=True
        )
        with pytest.raises(openai.APIError) as caught:
            list(stream)
        assert not isinstance(caught.value, openai.RateLimitError)
        assert "secrets" in str(caught.value.body)
    assert ask(world, "a", "hello", model="single") == "Echo: hello"


def test_blocked_calls_release_their_budget_and_cost_nothing(
    world: World, upstream: FakeOpenAIUpstream
) -> None:
    """Each blocked call is admitted against a small token budget (its estimate is most
    of it); were its reservation kept, the budget would be gone after the second one."""
    before = time.time()
    big = INJECTION + " " + "filler words " * 60  # an estimate of well over half the budget
    for _ in range(6):
        assert refused(world, "a", big, model="priced") == "prompt_injection"
    assert ask(world, "a", "hello", model="priced") == "Echo: hello"  # still admitted
    assert upstream.request_count == 1
    with pytest.raises(openai.RateLimitError):  # the budget is live: a bigger call is refused
        oai(world.gateway, world.keys["a"]).chat.completions.create(
            model="priced", messages=[{"role": "user", "content": "hi"}], max_tokens=1000
        )
    rows = _usage(world, "a", before, expect=8)
    priced = rows["priced"]
    assert priced.requests + priced.refused == 8
    # Only the answered call used tokens and money: 1000/2000 USD per million tokens.
    assert 0 < priced.prompt_tokens < 20 and 0 < priced.completion_tokens < 20
    assert priced.cost_micros == priced.prompt_tokens * 1000 + priced.completion_tokens * 2000


def _usage(world: World, tenant: str, since: float, expect: int) -> dict[str, UsageRow]:
    store_url = str(world.gateway.app.services.database.url)

    async def by_model(store: IdentityStore) -> dict[str, UsageRow]:
        rows = await UsageRepository(store.database).summary(
            "model", since, time.time() + 60, tenant_id=world.tenants[tenant]
        )
        return {row.group: row for row in rows if row.group is not None}

    deadline = time.monotonic() + 5
    rows: dict[str, UsageRow] = {}
    while time.monotonic() < deadline:
        rows = with_store(store_url, by_model)
        found = rows.get("priced")
        if found is not None and found.requests + found.refused >= expect:
            break
        time.sleep(0.2)
    return rows

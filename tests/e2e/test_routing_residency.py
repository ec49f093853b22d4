"""Data residency end to end: a restricted caller's call never reaches a deployment
outside its regions, not on failover, not through a fallback model, not as a hedge.

Upstream ``a`` serves in ``eu``, ``b`` and ``c`` in ``us`` (``c`` also serves an eu
deployment of its own). Tenant ``acme`` is held to eu; in tenant ``globex`` one key,
one app and one team are held to eu, and the ``free`` key is not restricted. What each
upstream received is read from its own request count.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from gatewise.store.identity import IdentityStore
from gatewise.testing import FakeAnthropicUpstream, FakeOpenAIUpstream, Scenario, run_in_thread
from gatewise.testing.gateway import RunningGateway
from tests.conftest import UPSTREAM_KEY, openai_provider
from tests.e2e.guardrail_support import module_gateway
from tests.e2e.test_routing_strategies import Client, Fakes, counts, grew
from tests.identity_seed import ACTOR, with_store
from tests.rawhttp import Reply, post

UPSTREAM_MODEL = "gpt-4o-mini"
RESTRICTED = ["acme", "key-pinned", "app-pinned", "team-pinned"]


@dataclass
class World:
    gateway: RunningGateway
    fakes: Fakes
    claude: FakeAnthropicUpstream  # an Anthropic upstream in us
    keys: dict[str, str]

    def client(self, key: str) -> Client:
        return Client(self.gateway.url, {"authorization": f"Bearer {self.keys[key]}"})

    def chat(self, key: str, model: str, text: str = "hi") -> Reply:
        caller = self.client(key)
        try:
            return caller.chat(text, model=model)
        finally:
            caller.close()

    def post(self, key: str, path: str, body: dict[str, Any]) -> Reply:
        headers = {"x-api-key": self.keys[key], "anthropic-version": "2023-06-01"}
        return post(self.gateway.url + path, body, headers=headers)


async def seed(store: IdentityStore) -> tuple[dict[str, str], dict[str, str]]:
    """Plaintext keys by name, and the ids of the keys residency names by id."""
    keys: dict[str, str] = {}
    ids: dict[str, str] = {}
    acme = await store.create_tenant(ACTOR, name="acme")
    app = await store.create_app(ACTOR, tenant_id=acme.id, name="main")
    _, keys["acme"] = await store.create_key(ACTOR, name="acme", app_id=app.id)
    record, keys["acme-us"] = await store.create_key(ACTOR, name="acme-us", app_id=app.id)
    ids["acme-us"] = record.id
    globex = await store.create_tenant(ACTOR, name="globex")
    team = await store.create_team(ACTOR, tenant_id=globex.id, name="ops")
    open_app = await store.create_app(ACTOR, tenant_id=globex.id, name="open")
    pinned_app = await store.create_app(ACTOR, tenant_id=globex.id, name="pinned")
    team_app = await store.create_app(ACTOR, tenant_id=globex.id, name="ops-app", team_id=team.id)
    _, keys["free"] = await store.create_key(ACTOR, name="free", app_id=open_app.id)
    record, keys["key-pinned"] = await store.create_key(ACTOR, name="pin", app_id=open_app.id)
    ids["key-pinned"] = record.id
    _, keys["app-pinned"] = await store.create_key(ACTOR, name="app", app_id=pinned_app.id)
    _, keys["team-pinned"] = await store.create_key(ACTOR, name="team", app_id=team_app.id)
    return keys, ids


def deployment(provider: str, name: str, region: str | None) -> dict[str, Any]:
    found = {"provider": provider, "model": UPSTREAM_MODEL, "name": name}
    return found if region is None else {**found, "region": region}


def model(name: str, *deployments: dict[str, Any], **routing: Any) -> dict[str, Any]:
    return {"name": name, "deployments": list(deployments), "routing": routing}


def world_config(
    fakes: Fakes, claude_url: str, store_url: str, ids: dict[str, str]
) -> dict[str, Any]:
    timeouts = {"first_byte": 5, "idle": 5, "total": 10}
    providers = {name: openai_provider(f.url, timeouts=timeouts) for name, f in fakes.items()}
    providers["claude"] = {
        "type": "anthropic",
        "base_url": claude_url,
        "api_key": "${env:GW_TEST_UPSTREAM_KEY}",
    }
    return {
        "auth": {"mode": "keys", "refresh_seconds": 0.2},
        "store": {"url": store_url},
        "providers": providers,
        "models": [
            model("chat", deployment("a", "a-chat", "eu"), deployment("b", "b-chat", "us")),
            # b first: configured order alone would pick it.
            model(
                "eu-pinned",
                deployment("b", "b-pinned", "us"),
                deployment("a", "a-pinned", "eu"),
                regions=["eu"],
            ),
            model("us-only", deployment("b", "b-us", "us")),
            model("eu-backup", deployment("c", "c-eu", "eu")),
            model(
                "guarded", deployment("a", "a-guarded", "eu"), fallbacks=["us-only", "eu-backup"]
            ),
            model("us-fallback", deployment("a", "a-usfb", "eu"), fallbacks=["us-only"]),
            model(
                "hedged",
                deployment("a", "a-hedged", "eu"),
                deployment("b", "b-hedged", "us"),
                hedge={"after_ms": 100},
            ),
            model("unplaced", deployment("b", "b-unplaced", None)),
            model(
                "eu-held", deployment("a", "a-held", "eu"), regions=["eu"], fallbacks=["us-only"]
            ),
            model(
                "embed",
                {**deployment("b", "b-embed", "us"), "model": "text-embedding-3-small"},
                {**deployment("a", "a-embed", "eu"), "model": "text-embedding-3-small"},
            ),
            model(
                "claude",
                {**deployment("claude", "claude-us", "us"), "model": "claude-haiku-4-5"},
                deployment("a", "a-claude", "eu"),
            ),
        ],
        "routing": {
            # Failures in one test must not open a breaker for the next.
            "breaker": {"failures": 1000, "min_requests": 1000},
            "residency": {
                "tenants": {"acme": ["eu"]},
                "teams": {"globex/ops": ["eu"]},
                "apps": {"globex/pinned": ["eu"]},
                "keys": {ids["key-pinned"]: ["eu"], ids["acme-us"]: ["us"]},
            },
        },
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    store_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('residency')}/gatewise.db"
    keys, ids = with_store(store_url, seed)
    with ExitStack() as stack:
        fakes = {
            name: stack.enter_context(run_in_thread(FakeOpenAIUpstream(api_key=UPSTREAM_KEY)))
            for name in ("a", "b", "c")
        }
        claude = stack.enter_context(run_in_thread(FakeAnthropicUpstream(api_key=UPSTREAM_KEY)))
        config = world_config(fakes, claude.url, store_url, ids)
        gateway = stack.enter_context(module_gateway(config))
        yield World(gateway, fakes, claude, keys)


@pytest.fixture
def fresh(world: World) -> World:
    for fake in world.fakes.values():
        fake.reset()
    world.claude.reset()
    return world


@pytest.mark.parametrize("key", RESTRICTED)
def test_a_restricted_caller_only_reaches_its_region(fresh: World, key: str) -> None:
    reply = fresh.chat(key, "chat")
    assert reply.status == 200 and reply.headers["x-gatewise-deployment"] == "a-chat"
    fresh.fakes["a"].script(Scenario(status=503))
    reply = fresh.chat(key, "chat")
    assert reply.status == 503, reply.body  # the eu deployment's failure, not b's answer
    assert counts(fresh.fakes) == {"a": 2, "b": 0, "c": 0}


def test_an_unrestricted_caller_fails_over_to_another_region(fresh: World) -> None:
    fresh.fakes["a"].script(Scenario(status=503))
    reply = fresh.chat("free", "chat")
    assert reply.status == 200 and reply.headers["x-gatewise-deployment"] == "b-chat"
    assert reply.headers["x-gatewise-attempts"] == "2"
    assert counts(fresh.fakes) == {"a": 1, "b": 1, "c": 0}


@pytest.mark.parametrize("key", ["free", "acme"])
def test_a_model_held_to_a_region_never_reaches_another(fresh: World, key: str) -> None:
    for _ in range(5):
        reply = fresh.chat(key, "eu-pinned")
        assert reply.status == 200 and reply.headers["x-gatewise-deployment"] == "a-pinned"
    fresh.fakes["a"].script(Scenario(status=503))
    assert fresh.chat(key, "eu-pinned").status == 503
    assert counts(fresh.fakes) == {"a": 6, "b": 0, "c": 0}


@pytest.mark.parametrize("key", RESTRICTED)
def test_no_deployment_in_the_callers_region_is_refused(fresh: World, key: str) -> None:
    for name in ("us-only", "unplaced"):  # a deployment without a region is in none
        reply = fresh.chat(key, name)
        assert reply.status == 403, reply.body
        error = reply.json["error"]
        assert error["code"] == "no_deployment_in_region"
        assert error["type"] == "invalid_request_error"
    assert fresh.chat("free", "us-only").status == 200
    assert fresh.chat("free", "unplaced").status == 200
    assert counts(fresh.fakes) == {"a": 0, "b": 2, "c": 0}


def test_restrictions_that_do_not_overlap_allow_nothing(fresh: World) -> None:
    """Tenant acme is held to eu and its key acme-us to us: no region is left."""
    for name in ("chat", "us-only", "eu-pinned"):
        reply = fresh.chat("acme-us", name)
        assert reply.status == 403 and reply.json["error"]["code"] == "no_deployment_in_region"
    assert counts(fresh.fakes) == {"a": 0, "b": 0, "c": 0}


@pytest.mark.parametrize("key", RESTRICTED)
def test_fallback_models_outside_the_region_are_skipped(fresh: World, key: str) -> None:
    fresh.fakes["a"].script(Scenario(status=503))
    reply = fresh.chat(key, "guarded")  # us-only is skipped, eu-backup serves
    assert reply.status == 200 and reply.headers["x-gatewise-deployment"] == "c-eu"
    fresh.fakes["a"].script(Scenario(status=503))
    reply = fresh.chat(key, "us-fallback")  # its only fallback is in us: the failure stands
    assert reply.status == 503, reply.body
    assert counts(fresh.fakes) == {"a": 2, "b": 0, "c": 1}


def test_fallback_models_serve_an_unrestricted_caller(fresh: World) -> None:
    fresh.fakes["a"].script(Scenario(status=503))
    reply = fresh.chat("free", "guarded")
    assert reply.status == 200 and reply.headers["x-gatewise-deployment"] == "b-us"
    assert counts(fresh.fakes) == {"a": 1, "b": 1, "c": 0}


def test_a_restricted_call_is_not_hedged_to_another_region(fresh: World) -> None:
    fresh.fakes["a"].script(Scenario(slow_first_byte=0.5, times=2))
    started = time.perf_counter()
    reply = fresh.chat("acme", "hedged")
    took = time.perf_counter() - started
    assert reply.status == 200 and reply.headers["x-gatewise-deployment"] == "a-hedged"
    assert reply.headers["x-gatewise-attempts"] == "1"
    assert took >= 0.5  # it waited for its own region's slow answer
    assert counts(fresh.fakes) == {"a": 1, "b": 0, "c": 0}
    before = counts(fresh.fakes)
    reply = fresh.chat("free", "hedged")  # the unrestricted caller is hedged to b
    assert reply.status == 200 and reply.headers["x-gatewise-deployment"] == "b-hedged"
    assert reply.headers["x-gatewise-attempts"] == "2"
    assert grew(fresh.fakes, before) == {"a": 1, "b": 1, "c": 0}


def test_a_model_held_to_a_region_does_not_fall_back_to_another(fresh: World) -> None:
    fresh.fakes["a"].script(Scenario(status=503))
    reply = fresh.chat("free", "eu-held")  # eu-held is held to eu; us-only serves in us
    assert counts(fresh.fakes)["b"] == 0, "a call for an eu-held model was served in us"
    assert reply.status == 503


def test_other_front_doors_keep_a_restricted_caller_in_its_region(fresh: World) -> None:
    embedded = post(
        fresh.gateway.url + "/v1/embeddings",
        {"model": "embed", "input": "hi"},
        headers={"authorization": f"Bearer {fresh.keys['acme']}"},
    )
    assert embedded.status == 200 and embedded.headers["x-gatewise-deployment"] == "a-embed"
    body = {"model": "claude", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    message = fresh.post("acme", "/v1/messages", body)
    assert message.status == 200 and message.headers["x-gatewise-deployment"] == "a-claude"
    assert message.json["content"][0]["text"] == "Echo: hi"
    assert counts(fresh.fakes) == {"a": 2, "b": 0, "c": 0}
    assert fresh.claude.request_count == 0
    free = fresh.post("free", "/v1/messages", body)  # unrestricted: the first deployment
    assert free.status == 200 and free.headers["x-gatewise-deployment"] == "claude-us"


def test_count_tokens_keeps_a_restricted_callers_prompt_in_its_region(fresh: World) -> None:
    body = {"model": "claude", "messages": [{"role": "user", "content": "secret eu data"}]}
    counted = fresh.post("acme", "/v1/messages/count_tokens", body)
    assert fresh.claude.request_count == 0, "the eu caller's prompt reached the us upstream"
    assert counted.status in (200, 403)

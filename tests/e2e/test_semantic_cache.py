"""The semantic cache end to end, with the openai SDK against a gateway in keys mode:
a paraphrased second question is answered from the cache (the fake upstream sees no
new request), another tenant's paraphrase is not, and a stream both fills the cache
and is answered from it. The encoder is the real int8 MiniLM export.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from gatewise.store.identity import IdentityStore
from gatewise.testing import FakeOpenAIUpstream
from gatewise.testing.gateway import RunningGateway
from tests.conftest import openai_provider
from tests.e2e.guardrail_support import UPSTREAM_MODEL, chat_requests, module_gateway, oai
from tests.identity_seed import ACTOR, with_store
from tests.semantic_cache_support import build_model_dir


@dataclass
class World:
    gateway: RunningGateway
    keys: dict[str, str]


async def seed(store: IdentityStore) -> dict[str, str]:
    keys: dict[str, str] = {}
    for name in ("a", "b"):
        tenant = await store.create_tenant(ACTOR, name=name)
        app = await store.create_app(ACTOR, tenant_id=tenant.id, name="app")
        _, keys[name] = await store.create_key(ACTOR, name=name, app_id=app.id)
    return keys


@pytest.fixture(scope="module")
def world(
    fake_openai: FakeOpenAIUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    model_dir = build_model_dir(tmp_path_factory)
    store_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('semantic')}/gatewise.db"
    keys = with_store(store_url, seed)
    config = {
        "auth": {"mode": "keys", "refresh_seconds": 0.2},
        "store": {"url": store_url},
        "providers": {"up": openai_provider(fake_openai.url)},
        "models": [
            {"name": UPSTREAM_MODEL, "deployments": [{"provider": "up", "model": UPSTREAM_MODEL}]}
        ],
        "semantic_cache": {"enabled": True, "model_dir": str(model_dir), "threshold": 0.85},
    }
    with module_gateway(config) as gateway:
        yield World(gateway, keys)


def ask(world: World, key: str, text: str) -> str | None:
    reply = oai(world.gateway, world.keys[key]).chat.completions.create(
        model=UPSTREAM_MODEL,
        messages=[
            {"role": "system", "content": "You are a helpful support assistant."},
            {"role": "user", "content": text},
        ],
    )
    return reply.choices[0].message.content


def test_a_paraphrase_is_answered_from_the_cache_but_not_for_another_tenant(
    world: World, fake_openai: FakeOpenAIUpstream
) -> None:
    fake_openai.reset()
    first = ask(world, "a", "How do I reset my password?")
    assert len(chat_requests(fake_openai)) == 1
    again = ask(world, "a", "I forgot my password, how can I change it?")
    assert again == first
    assert len(chat_requests(fake_openai)) == 1, "the paraphrase must not reach the upstream"
    assert ask(world, "a", "how do i reset my pasword") == first, "a typo repeat is a hit"
    assert len(chat_requests(fake_openai)) == 1

    ask(world, "b", "I forgot my password, how can I change it?")
    assert len(chat_requests(fake_openai)) == 2, "tenant b must not see tenant a's entry"

    ask(world, "a", "How do I delete my account forever?")
    assert len(chat_requests(fake_openai)) == 3, "a different question is a miss"

    colleague = ask(world, "a", "How do I reset my colleague's password?")
    assert colleague != first, "the lexical guard refuses a changed scope, however close"
    assert len(chat_requests(fake_openai)) == 4


def test_a_streamed_reply_fills_the_cache_and_a_stream_is_answered_from_it(
    world: World, fake_openai: FakeOpenAIUpstream
) -> None:
    fake_openai.reset()
    client = oai(world.gateway, world.keys["b"])

    def streamed(text: str) -> str:
        stream = client.chat.completions.create(
            model=UPSTREAM_MODEL,
            messages=[{"role": "user", "content": text}],
            stream=True,
            stream_options={"include_usage": True},
        )
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    first = streamed("Which city is the capital of France?")
    assert first and len(chat_requests(fake_openai)) == 1
    # (stored as the stream ends, before its last bytes reach the client)
    again = streamed("What is the capital city of France?")
    assert again == first
    assert len(chat_requests(fake_openai)) == 1
    unary = client.chat.completions.create(
        model=UPSTREAM_MODEL,
        messages=[{"role": "user", "content": "What's France's capital city?"}],
    )
    assert unary.choices[0].message.content == first
    assert len(chat_requests(fake_openai)) == 1

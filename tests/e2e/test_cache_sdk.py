"""The exact response cache end to end: the official openai and anthropic SDKs call a real
gateway (keys of two tenants) in front of fake upstreams that count requests.

The second identical call is answered from the cache (the upstream's count does not move),
as JSON or as a valid stream in the front door's own format; another tenant never gets the
first tenant's entry; bypass headers skip it; non-deterministic calls are not cached; the
``x-gatewise-cache`` header and the request records say hit (at cost 0); hits do not spend
a token budget.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest

from gatewise.store.engine import Database
from gatewise.store.identity import IdentityStore
from gatewise.store.records import RecordsRepository
from gatewise.testing import FakeAnthropicUpstream, FakeOpenAIUpstream, run_in_thread
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from tests.conftest import UPSTREAM_KEY, openai_provider
from tests.identity_seed import ACTOR, with_store

MODEL = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
PRICE = {"input_per_million": "1000", "output_per_million": "2000"}


@dataclass
class Setup:
    gateway: RunningGateway
    openai_fake: FakeOpenAIUpstream
    anthropic_fake: FakeAnthropicUpstream
    keys: dict[str, str]  # a and a2: tenant acme (two apps); b: tenant globex; budget
    store_url: str

    def openai(self, key: str = "a") -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.gateway.openai_base_url, api_key=self.keys[key], max_retries=0
        )

    def anthropic(self, key: str = "a") -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.gateway.url, api_key=self.keys[key], max_retries=0)

    def upstream_calls(self) -> int:
        return self.openai_fake.request_count + self.anthropic_fake.request_count


async def seed(store: IdentityStore) -> dict[str, str]:
    keys = {}
    acme = await store.create_tenant(ACTOR, name="acme")
    globex = await store.create_tenant(ACTOR, name="globex")
    for name, tenant in (("a", acme), ("a2", acme), ("b", globex), ("budget", acme)):
        app = await store.create_app(ACTOR, tenant_id=tenant.id, name=name)
        _, keys[name] = await store.create_key(ACTOR, name=name, app_id=app.id)
    return keys


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    mp = pytest.MonkeyPatch()
    mp.setenv("GW_TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    store_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('cache')}/gatewise.db"
    keys = with_store(store_url, seed)
    with (
        run_in_thread(FakeOpenAIUpstream(api_key=UPSTREAM_KEY, stream_chunks=5)) as oai,
        run_in_thread(FakeAnthropicUpstream(api_key=UPSTREAM_KEY, stream_chunks=5)) as ant,
    ):
        config: dict[str, Any] = {
            "auth": {"mode": "keys"},
            "store": {"url": store_url},
            "providers": {
                "oai": openai_provider(oai.url),
                "ant": {
                    "type": "anthropic",
                    "base_url": ant.url,
                    "api_key": "${env:GW_TEST_UPSTREAM_KEY}",
                },
            },
            "models": [
                {
                    "name": MODEL,
                    "deployments": [{"provider": "oai", "model": MODEL, "price": PRICE}],
                },
                {"name": CLAUDE, "deployments": [{"provider": "ant", "model": CLAUDE}]},
                {"name": "budget-gpt", "deployments": [{"provider": "oai", "model": MODEL}]},
            ],
            "budgets": [
                {
                    "name": "tiny",
                    "per": "key",
                    "tokens": 60,
                    "period": "day",
                    "models": ["budget-gpt"],
                }
            ],
            "cache": {"enabled": True},
            "observability": {"records": {"enabled": True, "flush_interval_ms": 20}},
        }
        with run_gateway_in_thread(config) as gateway:
            yield Setup(gateway, oai, ant, keys, store_url)
    mp.undo()


def question() -> list[dict[str, Any]]:
    """A message no other test asks (entries live as long as the module's gateway)."""
    return [{"role": "user", "content": f"What is {uuid.uuid4().hex}?"}]


def record(setup: Setup, request_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any] | None:
        database = Database(setup.store_url)
        await database.start()
        try:
            return await RecordsRepository(database).get(request_id)
        finally:
            await database.close()

    deadline = time.monotonic() + 10
    while True:
        found = asyncio.run(read())
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"no record of {request_id}"
        time.sleep(0.05)


def test_openai_second_identical_call_is_a_hit_at_zero_cost(setup: Setup) -> None:
    client = setup.openai()
    messages = question()
    before = setup.upstream_calls()
    first = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, temperature=0
    )
    assert first.headers["x-gatewise-cache"] == "miss"
    assert setup.upstream_calls() == before + 1
    second = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=messages,
        temperature=0,
        user="someone",  # user: not in the key
    )
    assert second.headers["x-gatewise-cache"] == "hit"
    assert setup.upstream_calls() == before + 1  # the upstream was not called again
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert "x-gatewise-deployment" not in second.headers  # no deployment answered

    missed = record(setup, first.headers["x-request-id"])
    hit = record(setup, second.headers["x-request-id"])
    assert missed["cache"] == "miss" and missed["cost_micros"] > 0
    assert hit["cache"] == "hit" and hit["cost_micros"] == 0 and hit["attempts"] is None
    assert hit["prompt_tokens"] == missed["prompt_tokens"]  # what the client got, as recorded


def test_openai_streamed_hit_replays_as_a_valid_stream(setup: Setup) -> None:
    client = setup.openai()
    messages = question()
    before = setup.upstream_calls()

    def streamed() -> tuple[str, str, Any]:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL,
            messages=messages,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage = "", None
        for chunk in raw.parse():
            for choice in chunk.choices:
                text += choice.delta.content or ""
            usage = chunk.usage or usage
        return raw.headers["x-gatewise-cache"], text, usage

    cache, text, usage = streamed()
    assert cache == "miss" and text and usage is not None
    again = streamed()
    assert again == ("hit", text, usage)
    assert setup.upstream_calls() == before + 1
    # The stored stream answers a plain call too.
    plain = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, temperature=0
    )
    assert plain.headers["x-gatewise-cache"] == "hit"
    assert plain.parse().choices[0].message.content == text
    assert setup.upstream_calls() == before + 1


def test_anthropic_sdk_hits_as_a_message_and_as_a_stream(setup: Setup) -> None:
    client = setup.anthropic()
    messages = question()
    before = setup.upstream_calls()
    first = client.messages.with_raw_response.create(
        model=CLAUDE,
        max_tokens=50,
        messages=messages,
        extra_body={"temperature": 0},  # type: ignore[arg-type]
    )
    second = client.messages.with_raw_response.create(
        model=CLAUDE,
        max_tokens=50,
        messages=messages,
        extra_body={"temperature": 0},  # type: ignore[arg-type]
    )
    assert (first.headers["x-gatewise-cache"], second.headers["x-gatewise-cache"]) == (
        "miss",
        "hit",
    )
    assert setup.upstream_calls() == before + 1
    message = second.parse()
    assert message.type == "message" and message.content[0].type == "text"
    assert message.content[0].text == first.parse().content[0].text  # type: ignore[union-attr]

    streamed = question()
    texts = []
    for _ in range(2):
        with client.messages.stream(
            model=CLAUDE,
            max_tokens=50,
            messages=streamed,
            extra_body={"temperature": 0},  # type: ignore[arg-type]
        ) as stream:
            texts.append("".join(stream.text_stream))
            final = stream.get_final_message()
            assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
            assert stream.response.headers["x-gatewise-cache"] in ("miss", "hit")
            assert stream.response.headers["x-gatewise-cache"] == ("hit" if texts[1:] else "miss")
    assert texts[0] and texts[0] == texts[1]
    assert setup.upstream_calls() == before + 2


def test_a_tenant_never_gets_another_tenants_entry(setup: Setup) -> None:
    messages = question()
    before = setup.upstream_calls()

    def ask(key: str) -> str:
        raw = setup.openai(key).chat.completions.with_raw_response.create(
            model=MODEL, messages=messages, temperature=0
        )
        return raw.headers["x-gatewise-cache"]

    assert ask("a") == "miss"
    assert ask("b") == "miss"  # globex: its own entry, from the upstream
    assert setup.upstream_calls() == before + 2
    assert ask("a2") == "hit"  # another app of acme shares acme's entries
    assert ask("b") == "hit"
    assert setup.upstream_calls() == before + 2


def test_bypass_headers_skip_the_cache(setup: Setup) -> None:
    client = setup.openai()
    messages = question()
    before = setup.upstream_calls()

    def ask(**headers: str) -> str:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages, temperature=0, extra_headers=headers
        )
        return raw.headers["x-gatewise-cache"]

    assert ask() == "miss"
    assert ask(**{"x-gatewise-cache": "bypass"}) == "bypass"
    assert ask(**{"cache-control": "no-cache"}) == "bypass"
    assert ask(**{"Cache-Control": "no-store"}) == "bypass"
    assert setup.upstream_calls() == before + 4
    assert ask() == "hit"
    assert setup.upstream_calls() == before + 4

    fresh = question()  # no-store keeps the reply out of the cache
    client.chat.completions.create(
        model=MODEL, messages=fresh, temperature=0, extra_headers={"cache-control": "no-store"}
    )
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=fresh, temperature=0
    )
    assert raw.headers["x-gatewise-cache"] == "miss"


def test_non_deterministic_calls_are_not_cached(setup: Setup) -> None:
    client = setup.openai()
    messages = question()
    before = setup.upstream_calls()
    for temperature in (None, None, 0.7, 0.7):
        extra = {} if temperature is None else {"temperature": temperature}
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages, **extra
        )
        assert "x-gatewise-cache" not in raw.headers
    assert setup.upstream_calls() == before + 4
    seeded = [
        client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages, seed=42, temperature=0.7
        ).headers["x-gatewise-cache"]
        for _ in range(2)
    ]
    assert seeded == ["miss", "hit"]  # a seed makes it reproducible


def test_hits_do_not_spend_a_token_budget(setup: Setup) -> None:
    """budget-gpt has a budget of 60 tokens a day per key: hits, however many, spend none of
    it; the same calls made past the cache exhaust it within a few calls."""
    client = setup.openai("budget")
    messages = question()
    first = client.chat.completions.create(
        model="budget-gpt", messages=messages, temperature=0, max_tokens=5
    )
    assert first.usage is not None and first.usage.total_tokens >= 5
    for _ in range(12):  # 12 x >= 5 tokens: the budget, if hits were charged
        raw = client.chat.completions.with_raw_response.create(
            model="budget-gpt", messages=messages, temperature=0, max_tokens=5
        )
        assert raw.headers["x-gatewise-cache"] == "hit"
    with pytest.raises(openai.RateLimitError) as refused:
        for _ in range(12):
            client.chat.completions.create(
                model="budget-gpt",
                messages=messages,
                temperature=0,
                max_tokens=5,
                extra_headers={"x-gatewise-cache": "bypass"},
            )
    assert refused.value.code == "insufficient_quota"

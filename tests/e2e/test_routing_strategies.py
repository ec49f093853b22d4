"""Routing strategies, hedging and a breaker shared by replicas, end to end.

Every deployment is its own fake OpenAI upstream on loopback, so which one served a
call is read from the upstreams' own request counts (the response headers are only
checked against them). Calls go over one keep-alive connection: thousands a second.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from gatewise.store.identity import IdentityStore
from gatewise.store.usage import UsageRepository
from gatewise.testing import FakeOpenAIUpstream, Scenario, run_in_thread
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from tests.conftest import UPSTREAM_KEY, openai_provider
from tests.e2e.gateways import serve_gateways
from tests.identity_seed import one_key, with_store
from tests.rawhttp import Reply
from tests.redis_support import require_redis

MODEL = "routed"
UPSTREAM_MODEL = "gpt-4o-mini"
Fakes = dict[str, FakeOpenAIUpstream]


class Client:
    """One keep-alive connection to a gateway."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        self._headers = {"content-type": "application/json", **(headers or {})}

    def chat(
        self,
        text: str = "hi",
        *,
        model: str = MODEL,
        system: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> Reply:
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": text})
        body = json.dumps({"model": model, "messages": messages, **extra}).encode()
        self._connection.request(
            "POST", "/v1/chat/completions", body, {**self._headers, **(headers or {})}
        )
        response = self._connection.getresponse()
        payload = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)

    def close(self) -> None:
        self._connection.close()


def counts(fakes: Fakes) -> dict[str, int]:
    return {name: fake.request_count for name, fake in fakes.items()}


def grew(fakes: Fakes, before: dict[str, int]) -> dict[str, int]:
    """How many requests each upstream received since ``before``."""
    return {name: fake.request_count - before[name] for name, fake in fakes.items()}


def routed_config(
    fakes: Fakes, routing: dict[str, Any], per_deployment: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One model served by one deployment per fake (named as the fake), in that order."""
    timeouts = {"first_byte": 5, "idle": 5, "total": 10}
    return {
        "auth": {"mode": "open"},
        "providers": {name: openai_provider(f.url, timeouts=timeouts) for name, f in fakes.items()},
        "models": [
            {
                "name": MODEL,
                "routing": routing,
                "deployments": [
                    {
                        "provider": name,
                        "model": UPSTREAM_MODEL,
                        "name": name,
                        **(per_deployment or {}).get(name, {}),
                    }
                    for name in fakes
                ],
            }
        ],
    }


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    """Two fresh upstreams: deployments ``a`` and ``b``."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(run_in_thread(FakeOpenAIUpstream(api_key=UPSTREAM_KEY)))
            for name in ("a", "b")
        }


@pytest.fixture
def client(
    fakes: Fakes, start_gateway: Callable[[dict[str, Any]], RunningGateway]
) -> Iterator[Callable[..., Client]]:
    """``client(routing, per_deployment)``: a gateway in front of ``fakes`` and a client."""
    clients: list[Client] = []

    def make(routing: dict[str, Any], per_deployment: dict[str, Any] | None = None) -> Client:
        gateway = start_gateway(routed_config(fakes, routing, per_deployment))
        clients.append(Client(gateway.url))
        return clients[-1]

    yield make
    for made in clients:
        made.close()


def test_weighted_splits_calls_by_weight(fakes: Fakes, client: Callable[..., Client]) -> None:
    gateway = client({"strategy": "weighted"}, {"a": {"weight": 80}, "b": {"weight": 20}})
    by_header = {"a": 0, "b": 0}
    for _ in range(2000):
        reply = gateway.chat()
        assert reply.status == 200, reply.body
        by_header[reply.headers["x-gatewise-deployment"]] += 1
    served = counts(fakes)
    assert served["a"] + served["b"] == 2000
    assert served == by_header  # the headers tell the truth
    share = served["a"] / 2000  # sd 0.009: 0.035 is about 4 sd
    assert 0.765 <= share <= 0.835, served


def test_sticky_sessions_always_land_on_the_same_deployment(
    fakes: Fakes, client: Callable[..., Client]
) -> None:
    gateway = client(
        {"strategy": "weighted", "sticky": "header", "sticky_header": "x-session-id"},
        {"a": {"weight": 70}, "b": {"weight": 30}},
    )
    sessions: dict[str, str] = {}
    for index in range(50):
        before = counts(fakes)
        for _ in range(20):
            reply = gateway.chat(headers={"x-session-id": f"session-{index}"})
            assert reply.status == 200, reply.body
        delta = grew(fakes, before)
        homes = [name for name, n in delta.items() if n]
        assert len(homes) == 1 and delta[homes[0]] == 20, (index, delta)
        sessions[f"session-{index}"] = homes[0]
    on_b = sum(home == "b" for home in sessions.values())
    assert 3 <= on_b <= 47, sessions  # both serve sessions (15 of 50 expected on b)


def test_tags_pick_the_tagged_deployment(fakes: Fakes, client: Callable[..., Client]) -> None:
    gateway = client({"strategy": "tags"}, {"a": {"tags": ["eu"]}, "b": {"tags": ["us", "fast"]}})

    def served_by(tags: str | None) -> str:
        before = counts(fakes)
        reply = gateway.chat(headers={"x-gatewise-tags": tags} if tags is not None else None)
        assert reply.status == 200, reply.body
        [name] = [name for name, n in grew(fakes, before).items() if n == 1]
        assert reply.headers["x-gatewise-deployment"] == name
        return name

    assert served_by("us") == "b"
    assert served_by("eu") == "a"
    assert served_by("US, Fast") == "b"  # every tag, any case
    assert served_by(None) == "a"  # no tags: configured order
    assert served_by("asia") == "a"  # nobody carries it: every deployment, configured order
    assert served_by("eu,fast") == "a"  # none carries both: configured order
    # An unknown tag allows every deployment: a failing a fails over to b.
    fakes["a"].script(Scenario(status=503))
    before = counts(fakes)
    reply = gateway.chat(headers={"x-gatewise-tags": "asia"})
    assert reply.status == 200 and reply.headers["x-gatewise-deployment"] == "b"
    assert grew(fakes, before) == {"a": 1, "b": 1}
    # A matched tag is a restriction: the one eu deployment failing is not replaced by b.
    fakes["a"].script(Scenario(status=503))
    before = counts(fakes)
    assert gateway.chat(headers={"x-gatewise-tags": "eu"}).status == 503
    assert grew(fakes, before) == {"a": 1, "b": 0}


def test_least_latency_prefers_the_fast_deployment(
    fakes: Fakes, client: Callable[..., Client]
) -> None:
    fakes["b"].script(Scenario(slow_first_byte=0.2, times=1000))  # every request to b
    gateway = client({"strategy": "least_latency"})
    for _ in range(3):  # warm-up: each unmeasured deployment is tried once
        assert gateway.chat().status == 200
    warmed = counts(fakes)
    assert warmed["a"] >= 1 and warmed["b"] >= 1, warmed  # both were measured
    for _ in range(30):
        assert gateway.chat().status == 200
    delta = grew(fakes, warmed)
    assert delta["a"] >= 24, delta


def test_least_busy_avoids_the_deployment_with_a_call_in_flight(
    fakes: Fakes, client: Callable[..., Client]
) -> None:
    gateway = client({"strategy": "least_busy"})
    slow = Client(gateway.url)
    done: list[Reply] = []
    worker = threading.Thread(target=lambda: done.append(slow.chat("[[fake:slow_first_byte=1]]")))
    worker.start()
    deadline = time.monotonic() + 2
    while sum(counts(fakes).values()) < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    [busy] = [name for name, n in counts(fakes).items() if n == 1]
    idle = "b" if busy == "a" else "a"
    for _ in range(10):  # all while the slow call is still in flight
        reply = gateway.chat()
        assert reply.status == 200 and reply.headers["x-gatewise-deployment"] == idle
    assert done == [], "the slow call ended too early for the test to mean anything"
    assert counts(fakes) == {busy: 1, idle: 10}
    worker.join(5)
    slow.close()
    assert done[0].status == 200


def test_lowest_cost_sends_calls_to_the_cheap_deployment(
    fakes: Fakes, client: Callable[..., Client]
) -> None:
    gateway = client(
        {"strategy": "lowest_cost"},
        {
            "a": {"price": {"input_per_million": "5", "output_per_million": "15"}},
            "b": {"price": {"input_per_million": "0.1", "output_per_million": "0.4"}},
        },
    )
    for _ in range(10):
        reply = gateway.chat(max_tokens=50)
        assert reply.status == 200 and reply.headers["x-gatewise-deployment"] == "b"
    assert counts(fakes) == {"a": 0, "b": 10}
    fakes["b"].script(Scenario(status=503))  # the dear one is still the failover
    assert gateway.chat().headers["x-gatewise-deployment"] == "a"


def long_prompt(seed: int) -> str:
    """A system prompt of about 3 KB, different for every seed."""
    return f"Policy document {seed}. " + " ".join(f"rule-{seed}-{i}" for i in range(300))


def test_prefix_affinity_keeps_a_shared_prompt_on_one_deployment(
    fakes: Fakes, client: Callable[..., Client]
) -> None:
    gateway = client({"strategy": "prefix_affinity"})
    system = long_prompt(0)
    assert len(system) > 2048
    for index in range(20):
        assert gateway.chat(f"question {index}", system=system).status == 200
    assert sorted(counts(fakes).values()) == [0, 20], counts(fakes)
    before = counts(fakes)
    for seed in range(1, 41):
        assert gateway.chat("question", system=long_prompt(seed)).status == 200
    spread = grew(fakes, before)
    assert spread["a"] >= 5 and spread["b"] >= 5, spread


# --- hedging ------------------------------------------------------------------------


def hedged_config(fakes: Fakes, tmp_path: Path) -> tuple[dict[str, Any], str, str]:
    """A hedged model (a, then b after 100 ms) with usage records; config, store, key."""
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, one_key)
    config = routed_config(
        fakes,
        {"hedge": {"after_ms": 100}},
        {
            "a": {"price": {"input_per_million": "100", "output_per_million": "100"}},
            "b": {"price": {"input_per_million": "1", "output_per_million": "2"}},
        },
    )
    config.update(auth={"mode": "keys"}, store={"url": store_url, "usage_records": True})
    return config, store_url, key


def billed(store_url: str) -> tuple[int, int, int, int]:
    """Requests, prompt tokens, completion tokens and micro-USD recorded for MODEL."""

    async def read(store: IdentityStore) -> tuple[int, int, int, int]:
        rows = await UsageRepository(store.database).summary("model", 0, time.time() + 60)
        [row] = [row for row in rows if row.group == MODEL]
        return row.requests, row.prompt_tokens, row.completion_tokens, row.cost_micros

    return with_store(store_url, read)


def wait_closed(fake: FakeOpenAIUpstream, within: float) -> bool:
    deadline = time.monotonic() + within
    while fake.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    return fake.open_connections == 0


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_hedge_answers_from_the_fast_deployment_and_bills_once(
    fakes: Fakes, upstream_key_env: str, tmp_path: Path, stream: bool
) -> None:
    config, store_url, key = hedged_config(fakes, tmp_path)
    fakes["a"].script(Scenario(slow_first_byte=1.0))
    with run_gateway_in_thread(config) as gateway:
        caller = Client(gateway.url, {"authorization": f"Bearer {key}"})
        extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if stream else {}
        started = time.perf_counter()
        reply = caller.chat("hedge me", stream=stream, **extra)
        took = time.perf_counter() - started
        assert reply.status == 200, reply.body
        assert took < 0.6, f"{took:.2f} s: the hedge did not answer for the slow deployment"
        assert reply.headers["x-gatewise-deployment"] == "b"
        assert reply.headers["x-gatewise-attempts"] == "2"
        assert counts(fakes) == {"a": 1, "b": 1}  # a received it ...
        # ... and the gateway dropped it: its connection closes before a would answer.
        assert wait_closed(fakes["a"], within=0.5), "the slow attempt was not cancelled"
        if stream:
            events = [line for line in reply.body.split(b"\n") if line.startswith(b"data: ")]
            assert events[-1] == b"data: [DONE]"
            usage = json.loads(events[-2][6:])["usage"]
            text = "".join(
                choice["delta"].get("content") or ""
                for event in events[:-1]
                for choice in json.loads(event[6:])["choices"]
            )
        else:
            usage = reply.json["usage"]
            text = reply.json["choices"][0]["message"]["content"]
        assert text == "Echo: hedge me"
        time.sleep(1.0)  # a's own answer would have come by now: still one call each
        assert counts(fakes) == {"a": 1, "b": 1}
        caller.close()
    requests, prompt, completion, cost = billed(store_url)  # written when the gateway stopped
    assert (requests, prompt, completion) == (
        1,
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert cost == prompt * 1 + completion * 2  # b's price (micro-USD per token), once


def test_a_fast_first_deployment_is_not_hedged(fakes: Fakes, client: Callable[..., Client]) -> None:
    gateway = client({"hedge": {"after_ms": 300}})
    for _ in range(5):
        reply = gateway.chat()
        assert reply.headers["x-gatewise-attempts"] == "1"
    assert counts(fakes) == {"a": 5, "b": 0}


# --- a breaker shared by replicas -----------------------------------------------------


def test_a_breaker_opened_on_one_replica_stops_the_other_within_a_second(
    fakes: Fakes, upstream_key_env: str, tmp_path: Path
) -> None:
    redis_url = require_redis()
    prefix = f"gwtest:routing:{uuid.uuid4().hex[:8]}:"
    config = routed_config(fakes, {})
    config.update(
        state={"backend": "redis", "redis_url": redis_url, "key_prefix": prefix},
        routing={"breaker": {"failures": 3, "cooldown_s": 2}},
        store={"url": f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"},
    )
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    fakes["a"].script(Scenario(status=500, times=10_000))
    shared = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with serve_gateways(path, 2) as served:
            first, second = (Client(url) for url in served.urls)
            for _ in range(3):  # each: a fails, b serves
                reply = first.chat()
                assert reply.status == 200 and reply.headers["x-gatewise-attempts"] == "2"
            opened = time.monotonic()
            assert counts(fakes) == {"a": 3, "b": 3}
            reply = first.chat()  # replica 1 skips a at once
            assert reply.headers["x-gatewise-attempts"] == "1"
            assert counts(fakes)["a"] == 3
            # Replica 1 publishes within one sharing interval (0.5 s) ...
            while not (value := shared.hget(prefix + "routing:health", "breaker:a")):
                assert time.monotonic() - opened < 1.0, "replica 1 never published the breaker"
                time.sleep(0.01)
            assert isinstance(value, str) and value.startswith("open:"), value
            time.sleep(0.65)  # ... and replica 2 reads it within one more
            for _ in range(10):
                reply = second.chat()
                assert reply.status == 200 and reply.headers["x-gatewise-deployment"] == "b"
            assert counts(fakes)["a"] == 3, "replica 2 still sends to the broken deployment"
            assert time.monotonic() - opened < 2.0  # inside the cool-down: no probe yet
            first.close()
            second.close()
    finally:
        for found in shared.scan_iter(match=prefix + "*"):
            shared.delete(found)
        shared.close()

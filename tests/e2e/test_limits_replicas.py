"""Proof of exactness: two gateway processes on one Redis admit exactly the limit.

Each gateway runs two workers, so four processes share the counters. Many
concurrent calls are split across both gateways; the upstream answers after
LATENCY seconds, so every call is admitted or refused before any finishes and
settles (a settlement gives back what the estimate over-charged, which would let
late calls in). Exactly the limit must get through: for a request limit, a token
limit (admitted on each call's estimate) and a dollar budget.
"""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from gatewise.config.pricing import PriceConfig
from gatewise.core.tokens import admission_count_request
from gatewise.core.types import ChatRequest, Message
from gatewise.pricing.cost import estimate_cost_micros, price_from_config
from gatewise.store.identity import IdentityStore
from tests.e2e.gateways import serve_gateways
from tests.identity_seed import ACTOR, with_store
from tests.rawhttp import request
from tests.redis_support import require_redis

PROMPT = "count me"
MAX_TOKENS = 20
TOKEN_LIMIT = 1000
USD_BUDGET = "0.05"
PRICE = {"input_per_million": "100", "output_per_million": "200"}
CALLS = 60
#: The upstream's answer time: every call must be decided within it (half a second was
#: too little for 60 calls on a busy machine; a late refusal is printed).
LATENCY = 1.5


@dataclass
class Gateways:
    urls: list[str]
    keys: dict[str, str]


async def seed(store: IdentityStore) -> dict[str, str]:
    tenant = await store.create_tenant(ACTOR, name="acme")
    app = await store.create_app(ACTOR, tenant_id=tenant.id, name="load")
    keys = {}
    for name in ("requests", "tokens", "usd"):
        _, keys[name] = await store.create_key(ACTOR, name=name, app_id=app.id)
    return keys


def config_text(store_url: str, prefix: str) -> str:
    def slow(name: str, price: str = "") -> str:
        return f"  - {{name: {name}, deployments: [{{provider: slow, model: {name}{price}}}]}}\n"

    price = ", price: {input_per_million: '100', output_per_million: '200'}"
    return (
        "server: {workers: 2}\n"
        "auth: {mode: keys}\n"
        f'store: {{url: "{store_url}"}}\n'
        f"state: {{backend: redis, redis_url: 'redis://127.0.0.1:6379/0', key_prefix: '{prefix}'}}\n"
        f"providers:\n  slow: {{type: mock, latency_ms: {int(LATENCY * 1000)}}}\n"
        "models:\n" + slow("req-gpt") + slow("tok-gpt") + slow("usd-gpt", price) + "limits:\n"
        "  - {per: key, models: [req-gpt], requests_per_day: 25}\n"
        f"  - {{per: key, models: [tok-gpt], tokens_per_day: {TOKEN_LIMIT}}}\n"
        "budgets:\n"
        f"  - {{name: usd, per: key, models: [usd-gpt], usd: '{USD_BUDGET}', period: month}}\n"
    )


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateways]:
    require_redis()
    folder = tmp_path_factory.mktemp("exact")
    store_url = f"sqlite+aiosqlite:///{folder}/gatewise.db"
    keys = with_store(store_url, seed)
    config = folder / "gateway.yaml"
    config.write_text(config_text(store_url, f"gwtest:{uuid.uuid4().hex[:8]}:"))
    with serve_gateways(config, 2) as served:
        yield Gateways(served.urls, keys)


def fire(gateways: Gateways, key: str, model: str) -> list[int]:
    """CALLS concurrent calls, alternating between the two gateways; their statuses."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
    }
    headers = {"authorization": f"Bearer {gateways.keys[key]}"}

    def one(index: int) -> tuple[int, float]:
        url = gateways.urls[index % 2] + "/v1/chat/completions"
        status = request("POST", url, body, headers=headers, timeout=30).status
        return status, time.monotonic()

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(CALLS) as pool:
        results = list(pool.map(one, range(CALLS)))
    statuses = [status for status, _ in results]
    # The premise, for the failure message: no call settled before the last refusal.
    refused_by = max((done for status, done in results if status == 429), default=started)
    if refused_by - started >= LATENCY:
        print(f"the last refusal came {refused_by - started:.2f} s in: later than the upstream")
    return statuses


def estimate_tokens() -> int:
    chat = ChatRequest(model="x", messages=[Message(role="user", content=PROMPT)])
    return admission_count_request(chat) + MAX_TOKENS


def test_exactly_the_request_limit_is_admitted(gateways: Gateways) -> None:
    statuses = fire(gateways, "requests", "req-gpt")
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) == 25


def test_exactly_the_token_limit_is_admitted(gateways: Gateways) -> None:
    statuses = fire(gateways, "tokens", "tok-gpt")
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) == TOKEN_LIMIT // estimate_tokens()


def test_exactly_the_dollar_budget_is_admitted(gateways: Gateways) -> None:
    price = price_from_config(PriceConfig.model_validate(PRICE))
    chat = ChatRequest(model="x", messages=[Message(role="user", content=PROMPT)])
    per_call = estimate_cost_micros(price, admission_count_request(chat), MAX_TOKENS)
    budget = int(Decimal(USD_BUDGET) * 1_000_000)
    statuses = fire(gateways, "usd", "usd-gpt")
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) == budget // per_call

"""A hard USD budget holds across a failover to a dearer deployment.

Before the corridor, admission priced a call at its first deployment and settlement
at the last: a free deployment that failed over to a dear one overshot a $0.00029
budget 85-fold. Now the dear deployment is charged before it is called.
"""

from __future__ import annotations

from pathlib import Path

from gatewise.testing import FakeOpenAIUpstream
from gatewise.testing.gateway import run_gateway_in_thread
from tests.identity_seed import one_key, with_store
from tests.rawhttp import request


def test_a_failover_to_a_dearer_deployment_cannot_overshoot_a_hard_budget(
    upstream: FakeOpenAIUpstream, upstream_key_env: str, tmp_path: Path
) -> None:
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, one_key)
    config = {
        "store": {"url": store_url},
        "providers": {
            "free": {"type": "mock", "fail": {"status": 503, "every": 1}},
            "dear": {
                "type": "openai",
                "base_url": upstream.url + "/v1",
                "api_key": upstream_key_env,
            },
        },
        "models": [
            {
                "name": "gpt",
                "deployments": [
                    {"provider": "free", "model": "free", "price": {"input_per_million": "0"}},
                    {
                        "provider": "dear",
                        "model": "gpt-4o-mini",
                        "price": {"input_per_million": "100", "output_per_million": "100"},
                    },
                ],
            }
        ],
        "budgets": [{"name": "tiny", "per": "app", "usd": "0.002", "period": "month"}],
    }
    body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}
    headers = {"authorization": f"Bearer {key}"}
    with run_gateway_in_thread(config) as gateway:
        reply = request("POST", gateway.url + "/v1/chat/completions", body, headers=headers)
        # ~110 tokens at $100 per million is $0.011: over $0.002, so never called.
        assert reply.status == 429, reply.body
        assert reply.json["error"]["code"] == "insufficient_quota"
        assert upstream.requests == []
        # Calls the budget can take (~13 tokens: $0.0013 estimated) fail over and are served
        # until the next one would not fit; the budget is never overshot.
        small = {**body, "max_tokens": 5}
        spent = served = 0
        for _ in range(10):
            reply = request("POST", gateway.url + "/v1/chat/completions", small, headers=headers)
            if reply.status != 200:
                break
            served += 1
            spent += reply.json["usage"]["total_tokens"] * 100  # micro-USD at $100 per million
        assert reply.status == 429 and reply.json["error"]["code"] == "insufficient_quota"
        assert served >= 1 and len(upstream.requests) == served
        assert spent <= 2000

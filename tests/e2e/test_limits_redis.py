"""Concurrency limits in Redis: a slot is free again as soon as its call has answered."""

from __future__ import annotations

import uuid
from pathlib import Path

from gatewise.testing.gateway import run_gateway_in_thread
from tests.identity_seed import one_key, with_store
from tests.rawhttp import request
from tests.redis_support import require_redis


def test_sequential_calls_under_a_concurrency_of_one_all_pass(tmp_path: Path) -> None:
    redis_url = require_redis()
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, one_key)
    config = {
        "auth": {"mode": "keys"},
        "store": {"url": store_url},
        "state": {
            "backend": "redis",
            "redis_url": redis_url,
            "key_prefix": f"gwt:{uuid.uuid4().hex[:8]}:",
        },
        "providers": {"mock": {"type": "mock"}},
        "models": [
            {"name": "mock-gpt", "deployments": [{"provider": "mock", "model": "mock-gpt"}]}
        ],
        "limits": [{"per": "key", "concurrent": 1}],
    }
    body = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {key}"}
    with run_gateway_in_thread(config) as gateway:
        statuses = [
            request("POST", gateway.url + "/v1/chat/completions", body, headers=headers).status
            for _ in range(30)
        ]
    assert statuses == [200] * 30  # each call's slot came back before the next call asked

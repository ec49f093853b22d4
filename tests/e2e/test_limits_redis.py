"""Concurrency limits in Redis: a slot is free again as soon as its call has answered,
for the next call through any replica."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

from gatewise.testing.gateway import run_gateway_in_thread
from tests.identity_seed import one_key, with_store
from tests.rawhttp import request
from tests.redis_support import require_redis


def config_for(store_url: str, redis_url: str, prefix: str) -> dict[str, Any]:
    return {
        "auth": {"mode": "keys"},
        "store": {"url": store_url},
        "state": {
            "backend": "redis",
            "redis_url": redis_url,
            "key_prefix": prefix,
        },
        "providers": {"mock": {"type": "mock"}},
        "models": [
            {"name": "mock-gpt", "deployments": [{"provider": "mock", "model": "mock-gpt"}]}
        ],
        "limits": [{"per": "key", "concurrent": 1}],
    }


BODY = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


def test_sequential_calls_under_a_concurrency_of_one_all_pass(tmp_path: Path) -> None:
    redis_url = require_redis()
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, one_key)
    config = config_for(store_url, redis_url, f"gwt:{uuid.uuid4().hex[:8]}:")
    body = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {key}"}
    with run_gateway_in_thread(config) as gateway:
        statuses = [
            request("POST", gateway.url + "/v1/chat/completions", body, headers=headers).status
            for _ in range(30)
        ]
    assert statuses == [200] * 30  # each call's slot came back before the next call asked


def test_a_caller_alternating_between_two_replicas_is_never_refused(tmp_path: Path) -> None:
    """The slot a call held is free in Redis before its reply's last byte reached the
    caller, so the caller's next call is admitted, whichever replica it goes to."""
    redis_url = require_redis()
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, one_key)
    config = config_for(store_url, redis_url, f"gwt:{uuid.uuid4().hex[:8]}:")
    headers = {"authorization": f"Bearer {key}"}
    stream = {**BODY, "stream": True}
    with contextlib.ExitStack() as stack:
        replicas = [stack.enter_context(run_gateway_in_thread(config)) for _ in range(2)]
        statuses = [
            request(
                "POST",
                replicas[i % 2].url + "/v1/chat/completions",
                stream if i % 4 >= 2 else BODY,  # plain replies, then streams
                headers=headers,
            ).status
            for i in range(40)
        ]
    assert statuses == [200] * 40

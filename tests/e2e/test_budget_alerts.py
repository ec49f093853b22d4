"""Budget thresholds call the budget's webhook once each, signed, while calls go on."""

from __future__ import annotations

import time

import pytest

from gatewise.testing import run_in_thread
from gatewise.testing.gateway import run_gateway_in_thread
from gatewise.testing.webhook_receiver import WebhookReceiver
from tests.identity_seed import one_key, with_store
from tests.rawhttp import request

SECRET = "whsec-test-0123456789"


def test_each_threshold_is_announced_once(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GW_TEST_WEBHOOK_SECRET", SECRET)
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, one_key)
    with run_in_thread(WebhookReceiver()) as receiver:
        config = {
            "auth": {"mode": "keys"},
            "store": {"url": store_url},
            "providers": {"mock": {"type": "mock"}},
            "models": [{"name": "mock-gpt", "deployments": [{"provider": "mock", "model": "m"}]}],
            "webhooks": [
                {
                    "name": "ops",
                    "url": receiver.url + "/hook",
                    "secret": "${env:GW_TEST_WEBHOOK_SECRET}",
                }
            ],
            "budgets": [
                {
                    "name": "daily-tokens",
                    "per": "app",
                    "tokens": 200,
                    "period": "day",
                    "mode": "soft",
                    "alerts": [50, 80, 100],
                    "webhook": "ops",
                }
            ],
        }
        body = {
            "model": "mock-gpt",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 10,
        }
        with run_gateway_in_thread(config) as gateway:
            statuses = [
                request(
                    "POST",
                    gateway.url + "/v1/chat/completions",
                    body,
                    headers={"authorization": f"Bearer {key}"},
                ).status
                for _ in range(30)
            ]
            deadline = time.monotonic() + 5
            while len(receiver.accepted) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        # The gateway has stopped, and a stop settles every call and ends every delivery:
        # a duplicate alert would have arrived by now.
    assert statuses == [200] * 30  # a soft budget never refuses
    events = [delivery.json for delivery in receiver.accepted]
    assert sorted(e["threshold_percent"] for e in events) == [50, 80, 100]
    assert all(d.valid_signature(SECRET) for d in receiver.accepted)
    assert {e["budget"] for e in events} == {"daily-tokens"}
    assert all(e["unit"] == "tokens" and e["limit"] == 200 for e in events)

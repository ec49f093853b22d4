"""``/metrics`` over real sockets: what a scrape sees, who may scrape, bounded series."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gatewise.testing.gateway import run_gateway_in_thread
from tests.rawhttp import request

PROVIDER_KEY = "sk-test-provider-" + "q" * 24


def config(**metrics: Any) -> dict[str, Any]:
    return {
        "auth": {"mode": "open"},
        "providers": {
            "mock": {"type": "mock"},
            "real": {  # never called: its key must not show in metrics anyway
                "type": "openai",
                "api_key": "${env:GATEWISE_TEST_PROVIDER_KEY}",
                "base_url": "http://127.0.0.1:9/v1",
            },
        },
        "models": [
            {"name": "gpt-m", "deployments": [{"provider": "mock", "model": "m"}]},
            {"name": "gpt-r", "deployments": [{"provider": "real", "model": "r"}]},
        ],
        "observability": {"metrics": metrics},
    }


def chat(url: str, model: str, headers: dict[str, str] | None = None) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return request("POST", url + "/v1/chat/completions", body, headers=headers).status


def series(text: str) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    return [
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


@pytest.fixture(autouse=True)
def _provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWISE_TEST_PROVIDER_KEY", PROVIDER_KEY)


def test_a_thousand_model_names_and_headers_add_no_series() -> None:
    with run_gateway_in_thread(config()) as gateway:
        assert chat(gateway.url, "gpt-m") == 200
        assert chat(gateway.url, "made-up-0") == 404
        before = series(request("GET", gateway.url + "/metrics").body.decode())
        for index in range(1, 1000):
            assert chat(gateway.url, f"made-up-{index}", {f"x-made-up-{index}": "v"}) == 404
        reply = request("GET", gateway.url + "/metrics")
        assert reply.status == 200
        assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
        after = series(reply.body.decode())
        assert sorted(after) == sorted(before)
        text = reply.body.decode()
        assert 'model="other",provider="none",status="404"} 1000' in text
        assert "made-up" not in text and PROVIDER_KEY not in text


def test_the_scrape_token_is_required_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "scrape-token-" + "z" * 20
    monkeypatch.setenv("GATEWISE_TEST_SCRAPE", token)
    settings = {"token": "${env:GATEWISE_TEST_SCRAPE}", "path": "/internal/metrics"}
    with run_gateway_in_thread(config(**settings)) as gateway:
        chat(gateway.url, "gpt-m", {"authorization": f"Bearer {token}"})
        url = gateway.url + "/internal/metrics"
        refused = request("GET", url)
        assert refused.status == 401
        assert "scrape token" in refused.json["error"]["message"]
        assert request("GET", url, headers={"authorization": "Bearer nope"}).status == 401
        assert request("GET", url, headers={"authorization": token}).status == 401
        reply = request("GET", url, headers={"authorization": f"Bearer {token}"})
        assert reply.status == 200
        text = reply.body.decode()
        assert 'gatewise_requests_total{front_door="openai"' in text
        assert token not in text and PROVIDER_KEY not in text
        assert request("GET", gateway.url + "/metrics").status == 404  # moved


def test_metrics_can_be_switched_off() -> None:
    with run_gateway_in_thread(config(enabled=False)) as gateway:
        assert chat(gateway.url, "gpt-m") == 200
        assert request("GET", gateway.url + "/metrics").status == 404
        assert gateway.app.services.metrics is None
        assert not any(
            type(o).__name__ == "MetricsObserver" for o in gateway.app.generation.observers.all
        )


def test_in_flight_counts_the_requests_being_served_not_the_scrape() -> None:
    with run_gateway_in_thread(config()) as gateway:
        text = request("GET", gateway.url + "/metrics").body.decode()
        assert "gatewise_requests_in_flight 0\n" in text
        assert "gatewise_workers 1\n" in text
        assert "gatewise_usage_writer_queue_depth" in text
        assert "gatewise_usage_writer_dropped_total 0\n" in text


def test_the_request_records_writer_is_watched_when_records_are_on() -> None:
    cfg = config()
    cfg["observability"]["records"] = {"enabled": True}
    with run_gateway_in_thread(cfg) as gateway:
        assert chat(gateway.url, "gpt-m") == 200
        text = request("GET", gateway.url + "/metrics").body.decode()
        assert "gatewise_records_writer_queue_depth " in text
        assert "gatewise_records_writer_dropped_total 0\n" in text

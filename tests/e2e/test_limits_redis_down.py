"""When Redis cannot be reached: fail closed (503 at once) or open (per-process limits).

The gateway points at a port nobody listens on; requests must be answered
quickly either way, and the worker must keep serving.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from tests.e2e.test_cli import free_port
from tests.identity_seed import one_key, with_store
from tests.rawhttp import request

BODY = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def gateway_with(
    tmp_path_factory: pytest.TempPathFactory, on_error: str, workers: int = 1, rpm: int = 3
) -> Iterator[tuple[RunningGateway, str]]:
    store_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp(on_error)}/gatewise.db"
    key = with_store(store_url, one_key)
    config = {
        "server": {"workers": workers},
        "auth": {"mode": "keys"},
        "store": {"url": store_url},
        "state": {
            "backend": "redis",
            "redis_url": f"redis://127.0.0.1:{free_port()}/0",  # nobody listens there
            "on_error": on_error,
            "timeout_ms": 100,
        },
        "providers": {"mock": {"type": "mock"}},
        "models": [
            {"name": "mock-gpt", "deployments": [{"provider": "mock", "model": "mock-gpt"}]}
        ],
        "limits": [{"per": "key", "requests_per_minute": rpm}],
    }
    with run_gateway_in_thread(config) as gateway:
        yield gateway, key


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningGateway, str]]:
    yield from gateway_with(tmp_path_factory, "closed")


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningGateway, str]]:
    yield from gateway_with(tmp_path_factory, "open")


@pytest.fixture(scope="module")
def opened_two_workers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningGateway, str]]:
    # The config says two workers (this test runs one): each enforces half of every limit.
    yield from gateway_with(tmp_path_factory, "open", workers=2, rpm=4)


def call(gateway: RunningGateway, key: str) -> tuple[int, float, dict[str, object]]:
    started = time.perf_counter()
    reply = request(
        "POST",
        gateway.url + "/v1/chat/completions",
        BODY,
        headers={"authorization": f"Bearer {key}"},
    )
    return reply.status, time.perf_counter() - started, reply.json


def test_fail_closed_answers_503_quickly_and_keeps_serving(
    closed: tuple[RunningGateway, str],
) -> None:
    gateway, key = closed
    for _ in range(5):
        status, took, body = call(gateway, key)
        assert status == 503
        assert body["error"]["code"] == "limits_unavailable"  # type: ignore[index]
        assert took < 1.0
    assert request("GET", gateway.url + "/healthz").status == 200  # the worker is fine


def test_fail_open_serves_with_per_process_limits(opened: tuple[RunningGateway, str]) -> None:
    gateway, key = opened
    results = [call(gateway, key) for _ in range(5)]
    assert [status for status, _, _ in results] == [200, 200, 200, 429, 429]
    assert all(took < 1.0 for _, took, _ in results)


def test_fail_open_enforces_each_workers_share_of_a_limit(
    opened_two_workers: tuple[RunningGateway, str],
) -> None:
    gateway, key = opened_two_workers
    statuses = [call(gateway, key)[0] for _ in range(4)]
    assert statuses == [200, 200, 429, 429]  # 4 a minute over two workers: 2 each

"""A clean stop writes every usage record still queued: nothing is lost. A killed worker
loses none either but those of its last moments (the spool interval): the next start
replays what it had not written yet."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from gatewise.store.identity import IdentityStore
from gatewise.store.usage import UsageRepository
from tests.e2e.test_cli import GATEWISE, free_port, stop, wait_ready
from tests.identity_seed import one_key, with_store
from tests.rawhttp import request

CALLS = 40


BODY = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}


def gateway_config(tmp_path: Path) -> tuple[Path, str, str]:
    """A config, its records database's URL and a key."""
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, one_key)
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f'auth: {{mode: keys}}\nstore: {{url: "{store_url}"}}\n'
        "providers:\n  mock: {type: mock}\n"
        "models:\n  - {name: mock-gpt, deployments: [{provider: mock, model: mock-gpt}]}\n"
    )
    return config, store_url, key


def serve(config: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [*GATEWISE, "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/readyz", process)
    return process, url


def calls_recorded(store_url: str, since: float) -> int:
    async def count(store: IdentityStore) -> int:
        rows = await UsageRepository(store.database).summary("tenant", since - 1, time.time() + 1)
        return sum(row.requests for row in rows)

    return with_store(store_url, count)


def test_sigterm_flushes_every_usage_record(tmp_path: Path) -> None:
    config, store_url, key = gateway_config(tmp_path)
    started = time.time()
    process, url = serve(config)
    try:
        headers = {"authorization": f"Bearer {key}"}
        for _ in range(CALLS):
            assert (
                request("POST", url + "/v1/chat/completions", BODY, headers=headers).status == 200
            )
    finally:
        assert stop(process) == 0  # at once: most records are still queued
    assert calls_recorded(store_url, started) == CALLS


def test_a_killed_gateway_loses_no_usage_record_the_next_start_can_replay(
    tmp_path: Path,
) -> None:
    """kill -9 well within the writer's first second (records go to the database once a
    second): every call older than the spool interval (50 ms) must still be counted."""
    config, store_url, key = gateway_config(tmp_path)
    started = time.time()
    process, url = serve(config)
    try:
        headers = {"authorization": f"Bearer {key}"}
        for _ in range(10):
            assert (
                request("POST", url + "/v1/chat/completions", BODY, headers=headers).status == 200
            )
        time.sleep(0.2)  # longer than the spool interval
    finally:
        process.kill()
        process.wait()
    process, _ = serve(config)  # replays what the killed one had not written
    deadline = time.monotonic() + 10
    while calls_recorded(store_url, started) < 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stop(process) == 0
    assert calls_recorded(store_url, started) == 10

"""A clean stop writes every usage record still queued: nothing is lost."""

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


def test_sigterm_flushes_every_usage_record(tmp_path: Path) -> None:
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, one_key)
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f'auth: {{mode: keys}}\nstore: {{url: "{store_url}"}}\n'
        "providers:\n  mock: {type: mock}\n"
        "models:\n  - {name: mock-gpt, deployments: [{provider: mock, model: mock-gpt}]}\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [*GATEWISE, "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    started = time.time()
    try:
        wait_ready(url + "/readyz", process)
        body = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"authorization": f"Bearer {key}"}
        for _ in range(CALLS):
            assert (
                request("POST", url + "/v1/chat/completions", body, headers=headers).status == 200
            )
    finally:
        assert stop(process) == 0  # at once: most records are still queued

    async def count(store: IdentityStore) -> int:
        rows = await UsageRepository(store.database).summary("tenant", started - 1, time.time() + 1)
        return sum(row.requests for row in rows)

    assert with_store(store_url, count) == CALLS

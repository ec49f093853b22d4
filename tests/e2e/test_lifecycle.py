"""Stopping under load: SIGTERM lets every call and stream in flight finish, writes every
usage record, exits 0; ``/readyz`` answers 503 from the moment the drain begins."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from types import FrameType

import pytest
import sqlalchemy as sa

from gatewise.runtime.reload import watch_drain
from gatewise.store.identity import IdentityStore
from gatewise.store.tables import request_records
from gatewise.testing.gateway import run_gateway_in_thread
from tests.e2e.test_cli import GATEWISE, free_port, wait_ready
from tests.e2e.test_reload import Gateway, Load, config_text, seed_root
from tests.e2e.test_usage_flush import calls_recorded
from tests.identity_seed import with_store
from tests.rawhttp import request


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_load_finishes_streams_and_loses_no_record(
    tmp_path: Path, workers: int
) -> None:
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, seed_root)
    path = tmp_path / "gatewise.yaml"
    slow = {
        "providers": {"mock": {"type": "mock", "stream_chunks": 5, "chunk_delay_ms": 150}},
        "observability": {"records": {"enabled": True}},
    }
    path.write_bytes(config_text(["alpha"], store_url, workers=workers, extra=slow))
    port, log = free_port(), tmp_path / "gateway.log"
    started = time.time()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*GATEWISE, "serve", "--config", str(path), "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/readyz", process, timeout=60)
        gw = Gateway(process, url, log, key, path, store_url)
        with Load(gw, threads=6, keep_alive=False) as load:
            time.sleep(1.5)  # streams (0.75 s each) are under way
            process.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            code = process.wait(timeout=30)
        took = time.monotonic() - stopped
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text(errors="replace")
    assert code == 0, text
    assert took < 10, took  # the drain waited for the streams, not for the deadline
    # Every call in flight when the stop came was answered whole: no cut stream, no error
    # (new connections after it are refused: those never started and are not counted).
    assert load.failed == [], (load.failed[:5], text)
    assert load.ok > 10, load.ok
    assert calls_recorded(store_url, started) == load.ok, text  # usage records
    assert with_store(store_url, count_request_records) == load.ok, text  # request records


async def count_request_records(store: IdentityStore) -> int:
    async with store.database.engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(request_records)
        return int((await connection.execute(query)).scalar_one())


def test_readyz_is_unready_from_the_start_of_a_drain() -> None:
    """The SIGTERM hook marks the app draining before the server's own handler runs."""
    config = {
        "providers": {"mock": {"type": "mock"}},
        "models": [{"name": "alpha", "deployments": [{"provider": "mock", "model": "alpha"}]}],
    }
    seen: list[int] = []

    def server_handler(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)  # stands in for uvicorn's (which begins the drain)

    previous = signal.signal(signal.SIGTERM, server_handler)
    try:
        with run_gateway_in_thread(config) as running:
            assert request("GET", running.url + "/readyz").status == 200
            watch_drain(running.app)
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + 5
            while not seen and time.monotonic() < deadline:
                time.sleep(0.01)
            assert seen == [signal.SIGTERM]
            ready = request("GET", running.url + "/readyz")
            assert ready.status == 503 and ready.json["status"] == "draining"
            assert request("GET", running.url + "/healthz").status == 200  # alive, draining
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_drain_ends_at_its_deadline(tmp_path: Path) -> None:
    """A stream longer than ``server.drain_timeout_s`` is cut there; the stop is still clean."""
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, seed_root)
    path = tmp_path / "gatewise.yaml"
    extra = {
        "server": {"workers": 1, "drain_timeout_s": 1},
        "providers": {"mock": {"type": "mock", "stream_chunks": 20, "chunk_delay_ms": 500}},
    }
    path.write_bytes(config_text(["alpha"], store_url, workers=1, extra=extra))
    port = free_port()
    process = subprocess.Popen(
        [*GATEWISE, "serve", "--config", str(path), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/readyz", process, timeout=60)
        gw = Gateway(process, url, tmp_path / "unused.log", key, path, store_url)
        with Load(gw, threads=2, keep_alive=False) as load:  # one 10 s stream, one plain
            time.sleep(1)
            process.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            code = process.wait(timeout=30)
            took = time.monotonic() - stopped
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0
    assert 0.9 < took < 4, took  # the deadline, not the 10 s stream
    assert len(load.failed) == 1 and load.ok > 0, load.failed  # only the long stream was cut

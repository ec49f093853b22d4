"""Reloading a running ``gatewise serve`` (1 and 2 workers): SIGHUP, the admin API, the
file watcher; a bad config is rejected visibly and the old one keeps serving; no request
fails across 20 reloads under load; a rate-limit counter survives a reload."""

from __future__ import annotations

import http.client
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from gatewise.identity.roles import Role
from gatewise.store.identity import IdentityStore
from gatewise.store.tables import audit_log
from tests.e2e.test_cli import GATEWISE, free_port, stop, wait_ready
from tests.identity_seed import ACTOR, with_store
from tests.rawhttp import Reply, request


async def seed_root(store: IdentityStore) -> str:
    root = await store.create_user(ACTOR, email="root@ops.test", role=Role.PLATFORM_ADMIN)
    _, key = await store.create_key(ACTOR, name="root", user_id=root.id)
    return key


async def audit_actions(store: IdentityStore) -> list[dict[str, Any]]:
    async with store.database.engine.connect() as connection:
        rows = await connection.execute(sa.select(audit_log).order_by(audit_log.c.seq))
        return [dict(row._mapping) for row in rows]


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    key: str
    config: Path
    store_url: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Reply:
        headers = {"authorization": f"Bearer {self.key}"}
        return request(method, self.url + path, body, headers, timeout=10)

    def models(self) -> set[str]:
        reply = self.call("GET", "/v1/models")
        assert reply.status == 200, reply.body
        return {model["id"] for model in reply.json["data"]}

    def hup(self) -> None:
        self.process.send_signal(signal.SIGHUP)

    def until(self, check: Callable[[], bool], what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise AssertionError(f"{what} did not happen: {self.log.read_text(errors='replace')}")


def config_text(
    models: list[str], store_url: str, *, workers: int, extra: dict[str, Any] | None = None
) -> bytes:
    config: dict[str, Any] = {
        "server": {"workers": workers},
        "auth": {"mode": "keys", "refresh_seconds": 10},
        "store": {"url": store_url},
        "providers": {"mock": {"type": "mock", "stream_chunks": 4}},
        "models": [
            {"name": name, "deployments": [{"provider": "mock", "model": name}]} for name in models
        ],
        **(extra or {}),
    }
    return orjson.dumps(config)  # JSON is YAML


@contextmanager
def gateway(tmp_path: Path, workers: int, extra: dict[str, Any] | None = None) -> Iterator[Gateway]:
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, seed_root)
    path = tmp_path / "gatewise.yaml"
    path.write_bytes(config_text(["alpha"], store_url, workers=workers, extra=extra))
    port, log = free_port(), tmp_path / "gateway.log"
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
        pids: set[int] = set()  # every worker ready (each answers for itself)

        def every_worker() -> bool:
            pids.add(gw.call("GET", "/admin/v1/config").json["pid"])
            return len(pids) == workers

        gw.until(every_worker, "workers")
        yield gw
    finally:
        stop(process)


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_and_a_bad_config_is_rejected_visibly(tmp_path: Path, workers: int) -> None:
    with gateway(tmp_path, workers) as gw:
        assert gw.models() == {"alpha"}
        gw.config.write_bytes(config_text(["alpha", "beta"], gw.store_url, workers=workers))
        gw.hup()
        # Every worker: 20 answers in a row (the kernel spreads connections over workers).
        gw.until(lambda: all(gw.models() == {"alpha", "beta"} for _ in range(20)), "reload")

        status = gw.call("GET", "/admin/v1/config").json
        assert status["last_result"] == "loaded" and status["last_trigger"] == "sighup"
        assert status["source_path"] == str(gw.config.resolve()) and status["errors"] == []

        good = gw.config.read_bytes()
        gw.config.write_text("version: 1\nserver:\n  workers: 1\nmodels:\n  - nmae: typo\n")
        gw.hup()
        rejected: dict[int, dict[str, Any]] = {}

        def every_worker_rejected() -> bool:
            body = gw.call("GET", "/admin/v1/config").json
            if body["last_result"] == "rejected":
                rejected[body["pid"]] = body
            return len(rejected) == workers

        gw.until(every_worker_rejected, "rejection on every worker")
        for body in rejected.values():
            assert body["config_hash"] == status["config_hash"]  # the old one still serves
            assert any(re.match(rf"{re.escape(str(gw.config))}:5\b", e) for e in body["errors"])
        rejected_metric = f'gatewise_config_reloads_total{{result="rejected"}} {workers}'
        info = f'gatewise_config_info{{hash="{status["config_hash"][:16]}"}} {workers}'

        def scraped_both() -> bool:
            # One scrape: each worker adds the others' counts as last shared (every second),
            # so two scrapes answered by two workers may each be a second behind the other.
            text = gw.call("GET", "/metrics").body.decode()
            return rejected_metric in text and info in text

        gw.until(scraped_both, "reload metric and config info")
        # The old config keeps serving.
        assert gw.models() == {"alpha", "beta"}
        chat = gw.call("POST", "/v1/chat/completions", {"model": "beta", "messages": HI})
        assert chat.status == 200, chat.body

        # The admin API reloads (this worker) once the file is good again.
        gw.config.write_bytes(good)
        reloaded = gw.call("POST", "/admin/v1/config/reload")
        assert reloaded.status == 200 and reloaded.json["last_result"] == "loaded"
        assert reloaded.json["last_trigger"] == "admin" and reloaded.json["errors"] == []
    log = gw.log.read_text(errors="replace")
    assert log.count("config reload (sighup) rejected") == workers, log
    assert f"{gw.config}:5" in log
    entries = with_store(gw.store_url, audit_actions)
    rejects = [e for e in entries if e["action"] == "config_reject"]
    assert len(rejects) == workers, rejects
    loads = [e for e in entries if e["action"] == "config_load"]
    assert sum(1 for e in loads if e["after"]["source"] == "sighup") == workers, loads
    assert gw.key not in log + repr(entries)


def test_the_reload_api_is_for_platform_admins_only(tmp_path: Path) -> None:
    with gateway(tmp_path, 1) as gw:
        anonymous = request("POST", gw.url + "/admin/v1/config/reload", timeout=10)
        assert anonymous.status == 401


HI = [{"role": "user", "content": "hello"}]


class Load:
    """Threads calling the gateway (plain and streamed calls), counting every answer that
    is not a whole 200. Over keep-alive connections; or (``keep_alive=False``, for a stop)
    one connection per call, a thread ending when a new connection is refused or reset
    before any answer (the server stopped accepting: that call never began)."""

    def __init__(self, gw: Gateway, threads: int = 6, *, keep_alive: bool = True) -> None:
        self.gw = gw
        self.keep_alive = keep_alive
        self.ok = 0
        self.failed: list[str] = []
        self.refused = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _run(self, n: int) -> None:
        host = self.gw.url.removeprefix("http://")
        connection = http.client.HTTPConnection(host, timeout=30)
        headers = {"authorization": f"Bearer {self.gw.key}", "content-type": "application/json"}
        if not self.keep_alive:
            headers["connection"] = "close"
        while not self.stop.is_set():
            stream = n % 2 == 1
            body = orjson.dumps({"model": "alpha", "messages": HI, "stream": stream})
            if not self.keep_alive:
                connection = http.client.HTTPConnection(host, timeout=30)
                try:
                    connection.connect()
                except OSError:
                    with self._lock:
                        self.refused += 1
                    return
            answered = False
            try:
                connection.request("POST", "/v1/chat/completions", body, headers)
                reply = connection.getresponse()
                answered = True
                data = reply.read()
                good = reply.status == 200 and (not stream or data.endswith(b"data: [DONE]\n\n"))
                outcome = None if good else f"{reply.status} {data[:200]!r}"
            except (OSError, http.client.HTTPException) as error:
                outcome = repr(error)
                connection.close()
                connection = http.client.HTTPConnection(host, timeout=30)
                if not self.keep_alive and not answered and _never_began(error):
                    with self._lock:
                        self.refused += 1
                    return
            with self._lock:
                if outcome is None:
                    self.ok += 1
                else:
                    self.failed.append(outcome)
        connection.close()


def _never_began(error: BaseException) -> bool:
    """A connection the stopping server reset or closed before reading the call (one the
    kernel accepted as the listening socket closed)."""
    never = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)
    return isinstance(error, never)


@pytest.mark.parametrize("workers", [1, 2])
def test_no_request_fails_across_20_reloads(tmp_path: Path, workers: int) -> None:
    # Streams of 5 chunks 40 ms apart: many are under way at each swap.
    slow = {"providers": {"mock": {"type": "mock", "stream_chunks": 5, "chunk_delay_ms": 40}}}
    with gateway(tmp_path, workers, extra=slow) as gw:
        with Load(gw) as load:
            for n in range(20):
                models = ["alpha", "beta"] if n % 2 == 0 else ["alpha"]
                text = config_text(models, gw.store_url, workers=workers, extra=slow)
                gw.config.write_bytes(text)
                gw.hup()
                wanted = (1 + n) * workers

                def reloaded(wanted: int = wanted) -> bool:
                    return gw.log.read_text().count("config reloaded") >= wanted

                gw.until(reloaded, f"reload {n + 1}")
                time.sleep(0.1)
            before = load.ok
            time.sleep(0.3)
        assert load.ok > before  # still serving after the last reload
    assert load.failed == [], load.failed[:5]
    assert load.ok > 100, load.ok
    log = gw.log.read_text(errors="replace")
    assert log.count("config reloaded (sighup)") == 20 * workers, log


def test_a_rate_limit_counter_survives_a_reload_that_keeps_the_limit(tmp_path: Path) -> None:
    limit = {"limits": [{"name": "rpm", "per": "key", "requests_per_minute": 3}]}
    with gateway(tmp_path, 1, extra=limit) as gw:
        chat = {"model": "alpha", "messages": HI}
        assert [gw.call("POST", "/v1/chat/completions", chat).status for _ in range(2)] == [200] * 2
        gw.config.write_bytes(config_text(["alpha", "beta"], gw.store_url, workers=1, extra=limit))
        gw.hup()
        gw.until(lambda: gw.models() == {"alpha", "beta"}, "reload")
        assert gw.call("POST", "/v1/chat/completions", chat).status == 200  # the third
        assert gw.call("POST", "/v1/chat/completions", chat).status == 429  # the fourth


def test_the_watcher_reloads_a_changed_file(tmp_path: Path) -> None:
    watch = {"server": {"workers": 1, "reload": {"watch": True, "watch_interval_s": 0.2}}}
    with gateway(tmp_path, 1, extra=watch) as gw:
        text = config_text(["alpha", "beta"], gw.store_url, workers=1, extra=watch)
        gw.config.write_bytes(text)
        gw.until(lambda: gw.models() == {"alpha", "beta"}, "watched reload")
        assert gw.call("GET", "/admin/v1/config").json["last_trigger"] == "watch"

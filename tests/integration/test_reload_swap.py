"""``runtime.reload.Reloader`` on a gateway in a thread (real sockets): a stream in flight
finishes whole on the old generation, which is closed after it; breaker state survives a
reload that keeps the deployment; a config whose secret is missing is rejected."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import orjson

from gatewise.config.loader import load_config
from gatewise.runtime.reload import Reloader
from gatewise.testing.gateway import RunningGateway, run_gateway_in_thread
from tests.rawhttp import Reply, post, request

T = TypeVar("T")
HI = [{"role": "user", "content": "hello"}]


def write(path: Path, models: list[str], **provider: Any) -> None:
    config = {
        "auth": {"mode": "open"},
        "store": {"url": f"sqlite+aiosqlite:///{path.parent}/gatewise.db"},
        "providers": {"mock": {"type": "mock", **provider}},
        "models": [
            {"name": name, "deployments": [{"provider": "mock", "model": name}]} for name in models
        ],
    }
    path.write_bytes(orjson.dumps(config))


def run(running: RunningGateway, work: Coroutine[Any, Any, T]) -> T:
    return asyncio.run_coroutine_threadsafe(work, running.loop).result(timeout=30)


def test_a_stream_in_flight_finishes_on_the_old_generation(tmp_path: Path) -> None:
    path = tmp_path / "gatewise.yaml"
    write(path, ["alpha"], stream_chunks=6, chunk_delay_ms=150)
    with run_gateway_in_thread(load_config(path), tmp_path) as running:
        reloader = Reloader(running.app, path)
        old = running.app.generation
        replies: list[Reply] = []
        body = {"model": "alpha", "messages": HI, "stream": True}
        streaming = threading.Thread(
            target=lambda: replies.append(post(running.url + "/v1/chat/completions", body))
        )
        streaming.start()
        time.sleep(0.3)  # the stream is under way
        assert old.in_flight == 1
        write(path, ["alpha", "beta"], stream_chunks=6, chunk_delay_ms=150)
        status = run(running, reloader.reload("admin"))
        assert status.last_result == "loaded" and status.errors == []
        assert running.app.generation is not old
        assert old.draining is not None and not old.draining.is_set()  # still streaming
        streaming.join(timeout=10)
        assert replies[0].status == 200 and replies[0].body.endswith(b"data: [DONE]\n\n")
        assert old.in_flight == 0 and old.draining.is_set()
        models = request("GET", running.url + "/v1/models").json
        assert {m["id"] for m in models["data"]} == {"alpha", "beta"}
        run(running, reloader.close())  # the old generation's closing is done


def test_breaker_state_survives_a_reload_that_keeps_the_deployment(tmp_path: Path) -> None:
    path = tmp_path / "gatewise.yaml"
    write(path, ["alpha"])
    with run_gateway_in_thread(load_config(path), tmp_path) as running:
        reloader = Reloader(running.app, path)
        health = running.app.services.health.get("mock/alpha")

        async def trip() -> None:
            health.force_open(time.monotonic() + 60)

        def states() -> dict[str, object]:
            view = running.app.generation.corridor.router.deployments()
            return {str(d["id"]): d["state"] for d in view}

        run(running, trip())
        assert states() == {"mock/alpha": "open"}
        write(path, ["alpha", "beta"])
        assert run(running, reloader.reload("admin")).last_result == "loaded"
        assert running.app.services.health.get("mock/alpha") is health
        # The new generation's router sees the breaker still open.
        assert states() == {"mock/alpha": "open", "mock/beta": "closed"}
        fresh = post(running.url + "/v1/chat/completions", {"model": "beta", "messages": HI})
        assert fresh.status == 200, fresh.body
        run(running, reloader.close())


def test_a_missing_secret_is_rejected_and_the_old_config_serves(tmp_path: Path) -> None:
    path = tmp_path / "gatewise.yaml"
    write(path, ["alpha"])
    with run_gateway_in_thread(load_config(path), tmp_path) as running:
        reloader = Reloader(running.app, path)
        before = reloader.status.config_hash
        config = orjson.loads(path.read_bytes())
        config["providers"]["up"] = {
            "type": "openai",
            "api_key": "${env:GW_TEST_SURELY_UNSET_KEY}",
        }
        path.write_bytes(orjson.dumps(config))
        status = run(running, reloader.reload("admin"))
        assert status.last_result == "rejected", status
        assert status.config_hash == before
        assert any("GW_TEST_SURELY_UNSET_KEY" in error for error in status.errors), status.errors
        ok = post(running.url + "/v1/chat/completions", {"model": "alpha", "messages": HI})
        assert ok.status == 200
        run(running, reloader.close())


def test_a_reload_to_a_real_upstream_serves_through_it(tmp_path: Path) -> None:
    """Providers built off the event loop (the reload prepares on a thread) work on it."""
    from gatewise.testing import FakeOpenAIUpstream, run_in_thread

    path = tmp_path / "gatewise.yaml"
    write(path, ["alpha"])
    with (
        run_in_thread(FakeOpenAIUpstream(record=False)) as upstream,
        run_gateway_in_thread(load_config(path), tmp_path) as running,
    ):
        reloader = Reloader(running.app, path)
        config = orjson.loads(path.read_bytes())
        config["providers"] = {"up": {"type": "openai-compatible", "base_url": upstream.base_url}}
        config["models"] = [
            {"name": "alpha", "deployments": [{"provider": "up", "model": "gpt-4o-mini"}]}
        ]
        path.write_bytes(orjson.dumps(config))
        assert run(running, reloader.reload("admin")).last_result == "loaded"
        for stream in (False, True):
            body = {"model": "alpha", "messages": HI, "stream": stream}
            reply = post(running.url + "/v1/chat/completions", body)
            assert reply.status == 200, reply.body
        assert upstream.request_count == 2
        run(running, reloader.close())

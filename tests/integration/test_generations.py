"""Generations: a new config's generation is swapped in atomically; requests in flight finish
on the old one, which closes once they are done."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from gatewise.config.models import Config
from gatewise.runtime.generation import build_generation
from gatewise.testing.gateway import run_gateway_in_thread
from tests.rawhttp import Reply, request


def config(model: str, latency_ms: float = 0.0) -> dict[str, Any]:
    return {
        "auth": {"mode": "open"},
        "providers": {"mock": {"type": "mock", "latency_ms": latency_ms}},
        "models": [{"name": model, "deployments": [{"provider": "mock", "model": model}]}],
    }


def chat(url: str, model: str) -> Reply:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return request("POST", url + "/v1/chat/completions", body)


def test_a_swap_serves_new_requests_while_the_old_generation_finishes_its_own() -> None:
    with run_gateway_in_thread(config("old-model", latency_ms=400)) as gateway:
        app = gateway.app
        old = app.generation
        in_flight: dict[str, Reply] = {}
        caller = threading.Thread(
            target=lambda: in_flight.setdefault("reply", chat(gateway.url, "old-model"))
        )
        caller.start()
        while old.in_flight == 0:  # the slow call has reached the old generation
            threading.Event().wait(0.005)
        new = build_generation(Config.model_validate(config("new-model")), app.services)
        swapped = asyncio.run_coroutine_threadsafe(app.swap(new), gateway.loop)
        while app.generation is not new:
            threading.Event().wait(0.005)
        # New requests see the new config at once, while the old call is still running.
        assert chat(gateway.url, "new-model").status == 200
        assert chat(gateway.url, "old-model").status == 404
        assert not swapped.done()  # the old generation waits for its request
        caller.join(timeout=10)
        assert in_flight["reply"].status == 200
        assert in_flight["reply"].json["model"] == "old-model"
        assert swapped.result(timeout=5) is old and old.in_flight == 0
        models = request("GET", gateway.url + "/v1/models").json
        assert [m["id"] for m in models["data"]] == ["new-model"]

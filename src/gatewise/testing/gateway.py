"""Run a real gateway (uvicorn, real sockets) in a background thread, for tests.

The gateway gets its own event loop and an ephemeral loopback port, so the
blocking ``openai`` SDK client can call it from the test's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from gatewise.app import GatewayApp, create_app
from gatewise.config.models import Config, StoreConfig
from gatewise.server import uvicorn_options
from gatewise.store.urls import DEFAULT_URL


@dataclass
class RunningGateway:
    url: str
    app: GatewayApp
    #: The gateway's event loop (its own thread): run coroutines on the app with
    #: ``asyncio.run_coroutine_threadsafe(..., gateway.loop)``.
    loop: asyncio.AbstractEventLoop

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"


@contextlib.contextmanager
def run_gateway_in_thread(
    config: Config | dict[str, Any], config_dir: Path | None = None
) -> Iterator[RunningGateway]:
    """Start a gateway for ``config`` on 127.0.0.1 (any free port); stop it on exit.

    Without a config folder and a ``store`` section, the records database is a
    fresh SQLite file in a temporary folder (not ``./gatewise.db``).
    """
    if not isinstance(config, Config):
        config = Config.model_validate(config)
    with tempfile.TemporaryDirectory(prefix="gatewise-records-") as records:
        if config_dir is None and config.store.url == DEFAULT_URL:
            store = StoreConfig(url=f"sqlite+aiosqlite:///{records}/gatewise.db")
            config = config.model_copy(update={"store": store})
        with _serve(config, config_dir) as gateway:
            yield gateway


@contextlib.contextmanager
def _serve(config: Config, config_dir: Path | None) -> Iterator[RunningGateway]:
    app = create_app(config, config_dir)
    options = uvicorn_options("127.0.0.1", 0, loop="asyncio")
    options["timeout_graceful_shutdown"] = 5
    server = uvicorn.Server(uvicorn.Config(app, **options))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(server.serve()), daemon=True, name="gateway"
    )
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the gateway failed to start")
            threading.Event().wait(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield RunningGateway(f"http://127.0.0.1:{port}", app, loop)
    finally:
        server.should_exit = True
        thread.join(timeout=10)

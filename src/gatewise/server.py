"""``gatewise serve``: load and check the config, print how to call the gateway, run uvicorn."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatewise import __version__
from gatewise.config.models import Config
from gatewise.runtime.prepare import StartupError, prepare

if TYPE_CHECKING:
    from gatewise.app import GatewayApp

# Where worker processes find the config (they import the app factory by name).
CONFIG_ENV = "GATEWISE_CONFIG"


def run(
    config_path: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
) -> int:
    """Serve until stopped; returns the process exit code (1 for a bad config)."""
    from gatewise.config.loader import ConfigError, load_config
    from gatewise.telemetry.logging import configure_logging

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        prepared = prepare(config, config_path.parent)  # resolves secrets: fail early
    except StartupError as exc:
        print(f"{config_path}: {exc}", file=sys.stderr)
        return 1
    try:
        from gatewise.prompts.registry import check_prompts

        # A prompt file's mistake, at its line; limits naming unknown prompts.
        check_prompts(config, config_path.parent, str(config_path))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    server = config.server
    host = host or server.host
    port = server.port if port is None else port
    workers = workers or server.workers
    logs = config.observability.logs
    configure_logging(logs.level_or(server.log_level), logs.format)
    print(banner(config, prepared.skipped, config_path, host, port, workers), flush=True)

    import uvicorn

    options = uvicorn_options(host, port)
    options["timeout_graceful_shutdown"] = server.drain_timeout_s  # then the rest is cut
    if workers > 1:
        os.environ[CONFIG_ENV] = str(config_path.resolve())
        from gatewise.observe.metrics_share import remove_server_folder, server_folder

        # A fresh folder per server where workers share their metrics (gone at exit).
        metrics = server_folder() if config.observability.metrics.enabled else None
        try:
            _run_workers(workers, options)
        finally:
            if metrics is not None:
                remove_server_folder(metrics)
    else:
        from gatewise.app import create_app

        app = create_app(config, config_path.parent, tune_gc=True)
        reloadable(app, config_path)
        signal.signal(signal.SIGTERM, _stopped)  # after the drain uvicorn raises it again
        uvicorn.run(app, **options)
    return 0


def reloadable(app: GatewayApp, path: Path) -> None:
    """Give ``app`` its reloader (which takes SIGHUP from now on)."""
    from gatewise.runtime.reload import Reloader

    app.reloader = Reloader(app, path)
    app.reloader.hold_sighup()


def _stopped(signum: int, frame: object) -> None:
    """SIGTERM outside uvicorn's drain (before it, or re-raised after it): a clean stop."""
    raise SystemExit(0)


def _run_workers(workers: int, options: dict[str, Any]) -> None:
    """``uvicorn.run`` with ``workers``, under ``gatewise.supervisor.Supervisor``."""
    import uvicorn

    from gatewise.supervisor import Supervisor

    config = uvicorn.Config(
        "gatewise.server:create_app_from_env", factory=True, workers=workers, **options
    )
    sock = config.bind_socket()
    with contextlib.suppress(KeyboardInterrupt):
        Supervisor(config, sockets=[sock]).run()


def create_app_from_env() -> GatewayApp:
    """The factory each server worker calls: the config path comes from ``GATEWISE_CONFIG``."""
    from gatewise.app import create_app
    from gatewise.config.loader import load_config
    from gatewise.telemetry.logging import configure_logging

    path = Path(os.environ[CONFIG_ENV])
    config = load_config(path)
    logs = config.observability.logs
    configure_logging(logs.level_or(config.server.log_level), logs.format)
    app = create_app(config, path.parent, tune_gc=True)
    reloadable(app, path)
    return app


def uvicorn_options(host: str, port: int, *, loop: str | None = None) -> dict[str, Any]:
    """How the gateway runs on uvicorn (shared with the in-thread test gateway)."""
    from gatewise.http.protocol import CoalescingHttpToolsProtocol

    return {
        "host": host,
        "port": port,
        "loop": loop or ("uvloop" if _has_uvloop() else "asyncio"),
        "http": CoalescingHttpToolsProtocol,
        "lifespan": "on",
        "access_log": False,  # the gateway logs requests itself when server.access_log is on
        "log_config": None,
        "server_header": False,
        "proxy_headers": False,  # the gateway does not use the client address (yet)
        "timeout_graceful_shutdown": 30,
        "timeout_keep_alive": 30,
        "backlog": 4096,
    }


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def banner(
    config: Config, skipped: list[str], path: Path, host: str, port: int, workers: int
) -> str:
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{shown_host}:{port}"
    models = [m.name for m in config.models]
    left_out = {line.split("'")[1] for line in skipped if line.startswith("model ")}
    served = [m for m in models if m not in left_out]
    chat_model = next((m for m in served if "embed" not in m), served[0] if served else "MODEL")
    body = '{"model": "' + chat_model + '", "messages": [{"role": "user", "content": "Hello!"}]}'
    lines = [
        f"Gatewise {__version__} on {url} ({workers} worker{'s' if workers > 1 else ''}, "
        f"config {path})",
        f"  models: {', '.join(served) or 'none'}",
        *(f"  note: {line}" for line in skipped),
        "",
        "Try it with curl:",
        f"  curl {url}/v1/chat/completions -H 'Content-Type: application/json' "
        f"-d {shlex.quote(body)}",
        "",
        "or with the openai Python SDK (pip install openai):",
        "  from openai import OpenAI",
        f'  client = OpenAI(base_url="{url}/v1", api_key="unused")',
        f'  reply = client.chat.completions.create(model="{chat_model}", '
        'messages=[{"role": "user", "content": "Hello!"}])',
        "  print(reply.choices[0].message.content)",
        "",
    ]
    return "\n".join(lines)

"""``gatewise mock-upstream``: a fake upstream as a standalone process (demos, bench, users' CI).

Scripted failures work in-band through ``[[fake:...]]`` markers in the prompt,
since a separate process cannot be scripted from a test. Recording is off: a
long-running process must not grow, and nobody can read it anyway.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
import sys
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["FORMATS", "run_mock_upstream"]


class Fake(Protocol):
    async def start(self, host: str = ..., port: int = ...) -> str: ...

    async def close(self) -> None: ...


# Wire format -> "module:Class" of its fake; each class takes (api_key=..., record=...).
FORMATS: dict[str, str] = {
    "openai": "gatewise.testing.openai_upstream:FakeOpenAIUpstream",
    "azure": "gatewise.testing.openai_upstream:FakeOpenAIUpstream",
    "anthropic": "gatewise.testing.anthropic_upstream:FakeAnthropicUpstream",
    "gemini": "gatewise.testing.gemini_upstream:FakeGeminiUpstream",
}


def _fake_for(format: str, api_key: str | None) -> Fake:
    module_name, _, class_name = FORMATS[format].partition(":")
    fake_class: Any = getattr(importlib.import_module(module_name), class_name)
    fake: Fake = fake_class(api_key=api_key, record=False)
    return fake


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(fake: Fake, format: str, host: str, port: int) -> None:
    url = await fake.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"gatewise mock-upstream ({format}) listening on {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.close()


def run_mock_upstream(format: str, host: str, port: int, api_key: str | None) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean stop, 2 for an unknown format."""
    if format not in FORMATS:
        print(
            f"unknown format {format!r}: choose one of {', '.join(FORMATS)}",
            file=sys.stderr,
        )
        return 2
    fake = _fake_for(format, api_key)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(fake, format, host, port))
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0

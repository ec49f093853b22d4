"""Run a fake upstream in a background thread with its own event loop.

Synchronous tests (and the official SDKs' blocking clients) cannot share the
fake's loop, so the fake gets a thread of its own; ``script()`` and ``requests``
are safe to use from the test thread. Inside a running loop, call the fake's
``await start()`` / ``await close()`` (or ``async with``) instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Protocol, TypeVar

__all__ = ["Startable", "run_in_thread"]


class Startable(Protocol):
    """What the runner needs from a fake: async start (returning its URL) and close."""

    async def start(self, host: str = ..., port: int = ..., *, reuse_port: bool = ...) -> str: ...

    async def close(self) -> None: ...


FakeT = TypeVar("FakeT", bound=Startable)


def _new_loop(use_uvloop: bool) -> asyncio.AbstractEventLoop:
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


@contextmanager
def run_in_thread(
    fake: FakeT, host: str = "127.0.0.1", port: int = 0, *, use_uvloop: bool = False
) -> Iterator[FakeT]:
    """Start ``fake`` on ``host:port`` (0 = a free port) in a daemon thread; yield it started.

    ``with run_in_thread(FakeOpenAIUpstream()) as fake: fake.url`` -> ``http://127.0.0.1:PORT``.
    """
    loop = _new_loop(use_uvloop)
    started: Future[str] = Future()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(fake.start(host, port))
        except BaseException as exc:
            started.set_exception(exc)
            loop.close()
            return
        started.set_result("ok")
        try:
            loop.run_forever()
        finally:
            loop.close()

    thread = threading.Thread(target=serve, name="gatewise-fake-upstream", daemon=True)
    thread.start()
    started.result(timeout=10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.close(), loop).result(timeout=10)
        _cancel_leftovers(loop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel handler tasks still running (e.g. hanging ones) so the loop closes quietly."""

    async def cancel_all() -> None:
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout=10)

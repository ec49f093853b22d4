"""An event loop on a virtual clock, for unit tests of code that schedules with the loop.

``loop.time()`` starts at 0 and moves only when every task waits for a timer: it then jumps
straight to the next timer instead of waiting for it. ``asyncio.sleep``, ``loop.call_at``
and ``asyncio.timeout`` behave as on a real loop, but exactly and at once, whatever the
machine's load. Real I/O still works (it is polled without waiting while timers are due);
a test that waits for a socket or a thread must not also have timers it expects to wait
for, since the clock would jump past them.

A test opts in with ``@on_virtual_clock`` on an ``async def`` without fixtures.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any


class _JumpingSelector(selectors.DefaultSelector):
    """Polls I/O without waiting; where the loop would wait for a timer, the clock jumps."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:  # no timer at all: only I/O (or another thread) can wake the loop
            return super().select(None)
        events = super().select(0)
        if not events and timeout > 0:
            self.now += timeout  # the loop asked to wait exactly until its next timer
        return events


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._jumping = _JumpingSelector()
        super().__init__(self._jumping)

    def time(self) -> float:
        return self._jumping.now


def on_virtual_clock(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run the ``async def`` test on a fresh ``VirtualClockLoop`` (a plain test to pytest)."""

    def run() -> None:
        with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
            runner.run(test())

    run.__name__, run.__qualname__, run.__doc__ = test.__name__, test.__qualname__, test.__doc__
    return run

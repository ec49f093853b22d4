"""Observers: told about every upstream attempt and every finished request; they never change one.

The access log, usage records and, next, metrics and traces are observers.
``attempted`` runs when an attempt ends (for a stream: when the stream ends);
``finished`` when the request is over, its final status known (the app calls
it for every request, model calls or not). Both run on the event loop, on the
hot path: an observer hands anything slow to a background writer.
"""

from __future__ import annotations

from collections.abc import Sequence

from gatewise.core.context import Attempt, RequestContext


class Observer:
    """Base class: override what you watch."""

    def attempted(self, ctx: RequestContext, attempt: Attempt) -> None:
        return None

    def finished(self, ctx: RequestContext) -> None:
        return None


class Observers:
    """A list of observers, each called only for what it overrides."""

    __slots__ = ("_attempted", "_finished", "all", "watch_attempts", "watch_finished")

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self.all = tuple(observers)
        self._attempted = [o.attempted for o in self.all if _overrides(o, "attempted")]
        self._finished = [o.finished for o in self.all if _overrides(o, "finished")]
        #: Whether any observer watches attempts / finished requests (the hot path skips
        #: telling nobody).
        self.watch_attempts = bool(self._attempted)
        self.watch_finished = bool(self._finished)

    def attempted(self, ctx: RequestContext, attempt: Attempt) -> None:
        for observe in self._attempted:
            observe(ctx, attempt)

    def finished(self, ctx: RequestContext) -> None:
        for observe in self._finished:
            observe(ctx)


def _overrides(observer: Observer, method: str) -> bool:
    return getattr(type(observer), method) is not getattr(Observer, method)

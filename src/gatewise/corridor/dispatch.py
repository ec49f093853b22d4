"""Dispatch: call the plan's deployments in turn, timing and recording every attempt.

The router's plan says which deployments a call may try, in order. Dispatch
calls them: before each attempt the steps' ``before_attempt`` hooks run (so
admission can re-price a failover to a dearer deployment), then the provider;
every attempt is timed (time to the reply or the stream's opening, whole
duration), recorded on the request's context and told to the observers. A
retryable failure (429, 5xx, timeout, connection error) before the first byte
moves on to the next deployment; anything else, or the last deployment's
failure, is the call's failure. Providers record nothing themselves.

A provider gets the client's own body (``native``) only when it speaks that
body's wire format (its ``wire`` attribute).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gatewise.core.context import Attempt, RequestContext
from gatewise.core.errors import GatewayError, UpstreamError
from gatewise.core.types import ChatResponse, EmbeddingResponse
from gatewise.corridor.observer import Observers
from gatewise.providers.base import ChunkStream

if TYPE_CHECKING:
    from gatewise.corridor.call import Call
    from gatewise.corridor.step import Step

# Worth trying the next deployment: throttled, upstream broken or unreachable.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


#: What dispatch asks of a provider (one method each).
CHAT, STREAM, EMBED = 0, 1, 2


class Dispatch:
    def __init__(
        self,
        attempt_steps: Sequence[Step],
        observers: Observers,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._attempt_steps = tuple(attempt_steps)
        self._observers = observers
        # Skipped outright when no observer watches attempts (this runs for every call).
        self._observe = observers.attempted if observers.watch_attempts else None
        self.clock = clock

    async def chat(self, call: Call) -> ChatResponse:
        response: ChatResponse
        response, _attempt, _started = await self._attempts(call, CHAT)
        return response

    async def open_stream(self, call: Call) -> tuple[ChunkStream, Attempt, float]:
        """The opened stream, its attempt (still open: the stream tap ends it) and the
        clock reading when that attempt started."""
        stream: ChunkStream
        stream, attempt, started = await self._attempts(call, STREAM)
        return stream, attempt, started

    async def embed(self, call: Call) -> EmbeddingResponse:
        response: EmbeddingResponse
        response, _attempt, _started = await self._attempts(call, EMBED)
        return response

    async def _attempts(self, call: Call, operation: int) -> tuple[Any, Attempt, float]:
        ctx = call.ctx
        request: Any = call.request
        plan = call.plan
        last = len(plan) - 1
        clock = self.clock
        result: Any
        for index, target in enumerate(plan):
            for step in self._attempt_steps:
                await step.before_attempt(call, target)
            provider = target.provider
            native = call.native
            if native is not None and native.wire != getattr(provider, "wire", None):
                native = None
            attempt = Attempt(provider.name, target.model)
            ctx.attempts.append(attempt)
            started = clock()
            try:
                if operation == CHAT:
                    result = await provider.chat(request, target.model, native)
                elif operation == STREAM:
                    result = await provider.chat_stream(request, target.model, native)
                else:
                    result = await provider.embed(request, target.model)
            except GatewayError as error:
                self.end(ctx, attempt, started, error)
                if index == last or error.status not in RETRYABLE_STATUSES:
                    raise
                ctx.decisions.append(f"failover:{provider.name}/{target.model}:{error.status}")
                continue
            except BaseException as error:  # cancelled (the client left), or a bug
                self.end(ctx, attempt, started, error)
                raise
            attempt.status = 200
            attempt.first_byte_ms = (clock() - started) * 1000.0
            call.target = target
            if operation != STREAM:
                attempt.duration_ms = attempt.first_byte_ms
                if self._observe is not None:
                    self._observe(ctx, attempt)
            return result, attempt, started
        raise AssertionError("a routing plan has at least one deployment")

    def end(
        self,
        ctx: RequestContext,
        attempt: Attempt,
        started: float,
        error: BaseException | None = None,
    ) -> None:
        """Close an attempt (also a stream's, when it ends): its duration and error, and
        tell the observers."""
        if isinstance(error, GatewayError):
            if type(error) is UpstreamError:  # the upstream answered with this status
                attempt.status = error.status
            attempt.error = error.code or error.type
        elif isinstance(error, asyncio.CancelledError | GeneratorExit):
            attempt.error = "cancelled"
        elif error is not None:
            attempt.error = "internal_error"
        attempt.duration_ms = (self.clock() - started) * 1000.0
        if self._observe is not None:
            self._observe(ctx, attempt)

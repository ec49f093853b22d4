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
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from gatewise.core.context import Attempt, RequestContext
from gatewise.core.errors import GatewayError, UpstreamError
from gatewise.core.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    NativeBody,
)
from gatewise.corridor.observer import Observers
from gatewise.providers.base import ChunkStream
from gatewise.routing.catalog import Target

if TYPE_CHECKING:
    from gatewise.corridor.call import Call
    from gatewise.corridor.step import Step

T = TypeVar("T")
Invoke = Callable[[Target, NativeBody | None], Awaitable[T]]

# Worth trying the next deployment: throttled, upstream broken or unreachable.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class Dispatch:
    def __init__(
        self,
        attempt_steps: Sequence[Step],
        observers: Observers,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._attempt_steps = tuple(attempt_steps)
        self._observers = observers
        self.clock = clock

    async def chat(self, call: Call) -> ChatResponse:
        request = call.request
        assert isinstance(request, ChatRequest)

        def invoke(target: Target, native: NativeBody | None) -> Awaitable[ChatResponse]:
            return target.provider.chat(request, target.model, native)

        response, _attempt, _started = await self._attempts(call, invoke, keep_open=False)
        return response

    async def open_stream(self, call: Call) -> tuple[ChunkStream, Attempt, float]:
        """The opened stream, its attempt (still open: the stream tap ends it) and the
        clock reading when that attempt started."""
        request = call.request
        assert isinstance(request, ChatRequest)

        def invoke(target: Target, native: NativeBody | None) -> Awaitable[ChunkStream]:
            return target.provider.chat_stream(request, target.model, native)

        return await self._attempts(call, invoke, keep_open=True)

    async def embed(self, call: Call) -> EmbeddingResponse:
        request = call.request
        assert isinstance(request, EmbeddingRequest)

        def invoke(target: Target, _native: NativeBody | None) -> Awaitable[EmbeddingResponse]:
            return target.provider.embed(request, target.model)

        response, _attempt, _started = await self._attempts(call, invoke, keep_open=False)
        return response

    async def _attempts(
        self, call: Call, invoke: Invoke[T], *, keep_open: bool
    ) -> tuple[T, Attempt, float]:
        ctx = call.ctx
        plan = call.plan
        last = len(plan) - 1
        clock = self.clock
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
                result = await invoke(target, native)
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
            if not keep_open:
                attempt.duration_ms = attempt.first_byte_ms
                self._observers.attempted(ctx, attempt)
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
        self._observers.attempted(ctx, attempt)

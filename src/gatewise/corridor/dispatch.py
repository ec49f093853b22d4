"""Dispatch: walk the call's plan, one timed attempt at a time, until one answers.

The router's plan says which deployments a call may try, in order. Dispatch
calls them: before each attempt the steps' ``before_attempt`` hooks run (so
admission can re-price a failover to a dearer deployment), then the provider,
under the deployment's (or model's) timeout. Every attempt is timed, recorded on
the request's context, told to the observers and to the deployment's health
(its breaker, latency averages, in-flight count, rate-limit headroom).

A retryable failure (``routing.failures``) moves on to the next deployment; when
the plan is walked and ``routing.retry.attempts`` allows more, it is walked again
after a jittered backoff, each such retry paid from the retry budget. When the
model's plan is spent, its fallback models get plans of their own (context-window
and content-policy failures have their own fallback lists). A stream counts as
answered at its first chunk: until then its failure fails over like a plain call's;
after it, nothing is retried. With ``hedge``, a slow first attempt gets a second
one on the next deployment; the first answer wins and the other is cancelled.

A provider gets the client's own body (``native``) only when it speaks that
body's wire format (its ``wire`` attribute).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gatewise.core.context import Attempt, RequestContext
from gatewise.core.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from gatewise.core.types import ChatResponse, ChunkBatch, EmbeddingResponse, NativeBody
from gatewise.corridor.observer import Observers
from gatewise.observe.traceparent import UPSTREAM_TRACE, upstream_lines
from gatewise.providers.base import ChunkStream, Provider
from gatewise.routing.catalog import Route, Target
from gatewise.routing.failures import (
    CONTENT_POLICY,
    CONTEXT_WINDOW,
    fallback_kind,
    outcome,
    retryable,
)
from gatewise.routing.health import DeploymentHealth
from gatewise.routing.residency import Regions, narrow
from gatewise.routing.retry import backoff_s
from gatewise.routing.router import Router
from gatewise.routing.sink import HEADERS_SINK

if TYPE_CHECKING:
    from gatewise.corridor.call import Call
    from gatewise.corridor.step import Step

log = logging.getLogger("gatewise")

#: What dispatch asks of a provider (one method each).
CHAT, STREAM, EMBED = 0, 1, 2


class Dispatch:
    def __init__(
        self,
        attempt_steps: Sequence[Step],
        observers: Observers,
        clock: Callable[[], float] = time.perf_counter,
        router: Router | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._attempt_steps = tuple(attempt_steps)
        self._observers = observers
        # Skipped outright when no observer watches attempts (this runs for every call).
        self._observe = observers.attempted if observers.watch_attempts else None
        # The tracing observer's sampler when the gateway traces: each attempt then gets a
        # client span id, sent upstream in ``traceparent`` (``observe.traceparent``).
        self._trace_sampler = next(
            (o.trace_sampler for o in observers.all if hasattr(o, "trace_sampler")), None
        )
        self.clock = clock
        self.router = router if router is not None else Router()
        self._rng = rng or random.Random()

    async def chat(self, call: Call) -> ChatResponse:
        response: ChatResponse
        response, _attempt, _started = await self._attempts(call, CHAT)
        return response

    async def open_stream(self, call: Call) -> tuple[ChunkStream, Attempt, float]:
        """The opened stream (its first chunk in hand), its attempt (still open: the stream
        tap ends it) and the clock reading when that attempt started."""
        stream: ChunkStream
        stream, attempt, started = await self._attempts(call, STREAM)
        return stream, attempt, started

    async def embed(self, call: Call) -> EmbeddingResponse:
        response: EmbeddingResponse
        response, _attempt, _started = await self._attempts(call, EMBED)
        return response

    # --- the walk -------------------------------------------------------------------------

    async def _attempts(self, call: Call, operation: int) -> tuple[Any, Attempt, float]:
        router = self.router
        if router.retries:
            router.budget.called(router.clock())
        route, plan = call.route, call.plan
        seen = {route.name}
        held = route.policy.regions  # a model's regions bind its fallbacks too
        while True:
            try:
                return await self._walk(call, operation, route, plan)
            except GatewayError as error:
                fallback = self._fallback(call, route, error, seen, held)
                if fallback is None:
                    raise
                call.ctx.decisions.append(f"fallback:{route.name}->{fallback[0].name}")
                route, plan = fallback
                seen.add(route.name)
                held = narrow(held, route.policy.regions)

    def _fallback(
        self, call: Call, route: Route, error: GatewayError, seen: set[str], held: Regions
    ) -> tuple[Route, tuple[Target, ...]] | None:
        kind = fallback_kind(error)
        if kind is None:
            return None
        policy = route.policy
        if kind == CONTEXT_WINDOW:
            models = policy.context_window_fallbacks
        elif kind == CONTENT_POLICY:
            models = policy.content_policy_fallbacks
        else:
            models = policy.fallbacks
        for model in models:
            if model not in seen:
                found = self.router.plan_for(model, call, held)
                if found is not None:
                    return found
                call.ctx.decisions.append(f"fallback_unavailable:{model}")
        return None

    async def _walk(
        self, call: Call, operation: int, route: Route, plan: tuple[Target, ...]
    ) -> tuple[Any, Attempt, float]:
        router = self.router
        retry = router.config.retry
        ctx = call.ctx
        total = retry.attempts or len(plan)
        hedge = route.policy.hedge if operation != EMBED else None
        error: GatewayError | None = None
        index = 0
        tried = False
        while index < total:
            target = plan[index % len(plan)]
            retrying = index >= len(plan)  # the plan walked again
            index += 1
            health = router.board.get(target.info.id)
            last_chance = not tried and index >= min(total, len(plan))
            if retrying:
                wait = self._retry_wait(ctx, target, health, index - len(plan))
                if wait is None:
                    break
                if wait < 0:
                    continue
                await asyncio.sleep(wait)
            if not self._usable(ctx, route, target, health, last_chance):
                continue
            tried = True
            try:
                if hedge is not None and index < total and index < len(plan):
                    second = plan[index]
                    return await self._hedged(call, operation, route, target, second, health)
                return await self._one(call, operation, route, target, health)
            except _HedgeFailed as both:
                index += 1
                error = both.error
            except GatewayError as failed:
                error = failed
            if not retryable(error):
                raise error
            ctx.decisions.append(f"failover:{target.info.id}:{error.status}")
        if error is None:
            raise router.unavailable(route)
        raise error

    def _usable(
        self,
        ctx: RequestContext,
        route: Route,
        target: Target,
        health: DeploymentHealth,
        last_chance: bool,
    ) -> bool:
        """Whether to attempt ``target`` now (claiming a half-open breaker's one probe):
        not while it cools down or its breaker is open, unless it is a call's last chance
        and the router says to try the unavailable anyway."""
        now = self.router.clock()
        if health.cooling(now) or not health.admit(now):
            if not (last_chance and self.router.panics(route)):
                reason = "cooling" if health.cooling(now) else health.state(now)
                ctx.decisions.append(f"skip:{target.info.id}:{reason}")
                return False
            ctx.decisions.append(f"panic:{target.info.id}")
        return True

    def _retry_wait(
        self, ctx: RequestContext, target: Target, health: DeploymentHealth, retry: int
    ) -> float | None:
        """Seconds to wait before retrying ``target``: the jittered backoff, or longer to
        sit out its cool-down (a 429's retry-after). Negative: skip it (cooling longer than
        ``max_backoff_ms``); None: no more retries (the budget is spent)."""
        router = self.router
        config = router.config.retry
        now = router.clock()
        until = health.cooldown_until
        # (A millisecond more: a timer may fire a hair early, the cool-down must be over.)
        cooling = until - now + 0.001 if until is not None and until > now else 0.0
        if cooling * 1000.0 > config.max_backoff_ms:
            ctx.decisions.append(f"skip:{target.info.id}:cooling")
            return -1.0
        if not router.budget.try_retry(now):
            ctx.decisions.append("retry_budget_exhausted")
            return None
        wait = max(backoff_s(retry, config.backoff_ms, config.max_backoff_ms, self._rng), cooling)
        ctx.decisions.append(f"retry:{retry}:{wait * 1000:.0f}ms")
        return wait

    # --- one attempt ----------------------------------------------------------------------

    async def _one(
        self,
        call: Call,
        operation: int,
        route: Route,
        target: Target,
        health: DeploymentHealth,
    ) -> tuple[Any, Attempt, float]:
        for step in self._attempt_steps:
            await step.before_attempt(call, target)
        provider = target.provider
        native = call.native
        if native is not None and native.wire != getattr(provider, "wire", None):
            native = None
        ctx = call.ctx
        attempt = Attempt(provider.name, target.model, deployment=target.info.id)
        ctx.attempts.append(attempt)
        traced = None  # (no work unless the gateway traces or the caller sent a trace)
        if self._trace_sampler is not None or ctx.parent_span_id is not None:
            traced = UPSTREAM_TRACE.set(upstream_lines(ctx, attempt, self._trace_sampler))
        clock = self.clock
        started = clock()
        health.started()
        token = HEADERS_SINK.set(health)
        timeout = target.info.timeout or route.policy.timeout
        result: Any
        try:
            if timeout is None:  # the provider's own timeouts apply (the common case)
                result = await _ask(provider, operation, call, target.model, native)
            else:
                async with asyncio.timeout(timeout):
                    result = await _ask(provider, operation, call, target.model, native)
        except BaseException as failure:
            error = failure
            if isinstance(failure, TimeoutError):
                error = UpstreamTimeoutError(
                    f"The deployment '{target.info.id}' did not answer within {timeout:g} s."
                )
            self._failed(ctx, target, health, attempt, started, error)
            if error is failure:
                raise
            raise error from None
        finally:
            HEADERS_SINK.reset(token)
            if traced is not None:
                UPSTREAM_TRACE.reset(traced)
        attempt.status = 200
        attempt.first_byte_ms = (clock() - started) * 1000.0
        call.target = target
        if self.router.headers:
            ctx.deployment = target.info.id
        if operation != STREAM:
            attempt.duration_ms = attempt.first_byte_ms
            self.router.finished(target.info.id, "ok", attempt.first_byte_ms, attempt.duration_ms)
            if self._observe is not None:
                self._observe(ctx, attempt)
        return result, attempt, started

    def _failed(
        self,
        ctx: RequestContext,
        target: Target,
        health: DeploymentHealth,
        attempt: Attempt,
        started: float,
        error: BaseException,
    ) -> None:
        """Close a failed attempt: record it, and tell the deployment's health."""
        self._close(ctx, attempt, started, error)
        if isinstance(error, GatewayError) and error.status == 429:
            self.router.cool_down(target.info.id, error.headers)
        self.router.finished(target.info.id, outcome(error), None, None)

    async def _hedged(
        self,
        call: Call,
        operation: int,
        route: Route,
        first: Target,
        second: Target,
        health: DeploymentHealth,
    ) -> tuple[Any, Attempt, float]:
        """``first``, and ``second`` too if ``first`` has not answered within the hedge
        delay: the first success wins, the other attempt is cancelled."""
        hedge = route.policy.hedge
        assert hedge is not None
        delay = self.router.hedge_delay(first.info.id, hedge)
        leader = asyncio.ensure_future(self._one(call, operation, route, first, health))
        tasks = [leader]
        winner: asyncio.Future[tuple[Any, Attempt, float]] | None = None
        failure: GatewayError | None = None
        try:
            await asyncio.wait(tasks, timeout=delay)
            other = self.router.board.get(second.info.id)
            if leader.done() or not other.admit(self.router.clock()):
                winner = leader
                return await leader
            call.ctx.decisions.append(f"hedge:{second.info.id}:{delay * 1000:.0f}ms")
            tasks.append(asyncio.ensure_future(self._one(call, operation, route, second, other)))
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:  # in plan order: on a tie, the first deployment wins
                    if task not in done:
                        continue
                    error = task.exception()
                    if error is None:
                        winner = task
                        target = first if task is leader else second
                        call.ctx.decisions.append(f"hedge_won:{target.info.id}")
                        call.target = target
                        if self.router.headers:
                            call.ctx.deployment = target.info.id
                        return task.result()
                    if not isinstance(error, GatewayError):
                        raise error
                    failure = error
        finally:
            for task in tasks:
                if task is not winner:
                    await self._discard(call.ctx, task)
        assert failure is not None
        if not retryable(failure):
            raise failure
        raise _HedgeFailed(failure)

    async def _discard(
        self, ctx: RequestContext, task: asyncio.Future[tuple[Any, Attempt, float]]
    ) -> None:
        """Cancel a losing attempt and wait for it; a stream it opened all the same is
        closed and its attempt ended, cancelled (billed nowhere: only the winner's reply
        is read and counted)."""
        task.cancel()
        try:
            stream, attempt, started = await task
        except BaseException:  # cancelled or failed: ``_one`` has closed its attempt
            return
        if isinstance(stream, _Primed):
            await stream.aclose()
            self.end(ctx, attempt, started, asyncio.CancelledError())

    def end(
        self,
        ctx: RequestContext,
        attempt: Attempt,
        started: float,
        error: BaseException | None = None,
    ) -> None:
        """Close a stream's attempt when the stream ends: its duration and error, told to
        the observers and to the deployment's health."""
        self._close(ctx, attempt, started, error)
        if attempt.deployment:
            verdict = "ok" if error is None else outcome(error)
            self.router.finished(
                attempt.deployment, verdict, attempt.first_byte_ms, attempt.duration_ms
            )

    def _close(
        self,
        ctx: RequestContext,
        attempt: Attempt,
        started: float,
        error: BaseException | None = None,
    ) -> None:
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


async def _ask(
    provider: Provider, operation: int, call: Call, model: str, native: NativeBody | None
) -> Any:
    """The provider call ``operation`` names (a stream: opened and its first batch read)."""
    request: Any = call.request
    if operation == CHAT:
        return await provider.chat(request, model, native)
    if operation == STREAM:
        return await _primed(await provider.chat_stream(request, model, native))
    return await provider.embed(request, model)


class _HedgeFailed(Exception):
    """Both hedged attempts failed retryably: the walk goes on after the second."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


class _Primed:
    """An opened stream whose first batch has arrived (read ahead by dispatch, so a
    failure before it fails over); iterating yields that batch, then the rest."""

    __slots__ = ("_first", "_rest", "_stream")

    def __init__(self, stream: ChunkStream, rest: Any, first: ChunkBatch | None) -> None:
        self._stream = stream
        self._rest = rest
        self._first = first

    def __aiter__(self) -> _Primed:
        return self

    async def __anext__(self) -> ChunkBatch:
        first = self._first
        if first is not None:
            self._first = None
            return first
        if self._rest is None:
            raise StopAsyncIteration
        batch: ChunkBatch = await self._rest.__anext__()
        return batch

    async def aclose(self) -> None:
        rest, self._rest = self._rest, None
        try:
            if rest is not None and hasattr(rest, "aclose"):
                await rest.aclose()
        finally:
            await self._stream.aclose()


async def _primed(stream: ChunkStream) -> _Primed:
    """Read a fresh stream's first batch (closing the stream if that fails)."""
    rest = stream.__aiter__()
    try:
        first: ChunkBatch = await rest.__anext__()
    except StopAsyncIteration:
        return _Primed(stream, None, None)
    except BaseException:
        await stream.aclose()
        raise
    return _Primed(stream, rest, first)

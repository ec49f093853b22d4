"""The request corridor, written as one story per operation.

authenticate -> authorize -> admit -> inspect input -> cache -> route -> call
-> inspect output -> account. Authentication happens before the body is read
(``GatewayApp`` puts the caller on ``ctx.principal``); here the corridor
resolves the model, checks the caller may use it, routes it to its
deployments (in order, failing over on retryable errors before any byte
reached the client) and records what happened on the request context.
Limits, guardrails and caching plug in as explicit steps as they are built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from gatewise.core.context import RequestContext
from gatewise.core.errors import GatewayError, ModelNotFoundError
from gatewise.core.tokens import admission_count_request, estimate_usage, heuristic_count
from gatewise.core.types import (
    ChatRequest,
    ChatResponse,
    ChunkBatch,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelCard,
    Usage,
)
from gatewise.policies.access import ModelAccessPolicy
from gatewise.policies.metering import CallMeter
from gatewise.policies.traffic import Admission
from gatewise.pricing.book import PriceBook
from gatewise.providers.base import ChunkStream
from gatewise.routing.catalog import ModelCatalog, Route, Target

T = TypeVar("T")

# Worth trying the next deployment: throttled, upstream broken or unreachable.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class Pipeline:
    def __init__(
        self,
        catalog: ModelCatalog,
        access: ModelAccessPolicy | None = None,
        meter: CallMeter | None = None,
    ) -> None:
        self.catalog = catalog
        self.access = access
        self.meter = meter or CallMeter(None, PriceBook({}))

    def models(self, ctx: RequestContext) -> list[ModelCard]:
        """The models the caller may use (all of them when no caller is known)."""
        cards = self.catalog.cards()
        principal, access = ctx.principal, self.access
        if principal is None or access is None:
            return cards
        return [card for card in cards if access.may_use(principal, card.id)]

    def model(self, ctx: RequestContext, model: str) -> ModelCard:
        card = self.catalog.resolve(model).card
        principal, access = ctx.principal, self.access
        if principal is not None and access is not None and not access.may_use(principal, model):
            raise ModelNotFoundError(model)  # a model you may not use is not listed either
        return card

    def resolve(self, ctx: RequestContext, model: str) -> Route:
        """The route of ``model`` once the caller is known to be allowed to use it."""
        route = self.catalog.resolve(model)
        if ctx.principal is not None and self.access is not None:
            self.access.check(ctx.principal, model)
        return route

    async def chat(self, ctx: RequestContext, request: ChatRequest) -> ChatResponse:
        response, admission = await self._admitted_call(
            ctx,
            request.model,
            lambda: admission_count_request(request),
            request.output_token_limit,
            lambda t: t.provider.chat(request, t.model, ctx),
        )
        ctx.usage = response.usage
        if response.usage is None:
            text = "".join(c.message.content or "" for c in response.choices)
            ctx.usage = estimate_usage(request, text, request.model)
            ctx.usage_estimated = True
        self.meter.settle(ctx, admission, ctx.usage)
        return response

    async def chat_stream(self, ctx: RequestContext, request: ChatRequest) -> ChunkStream:
        """Open the upstream stream; chunks flow to the front door as they arrive."""
        stream, admission = await self._admitted_call(
            ctx,
            request.model,
            lambda: admission_count_request(request),
            request.output_token_limit,
            lambda t: t.provider.chat_stream(request, t.model, ctx),
        )
        return AccountedStream(
            stream, ctx, request, lambda: self.meter.settle(ctx, admission, ctx.usage)
        )

    async def embeddings(self, ctx: RequestContext, request: EmbeddingRequest) -> EmbeddingResponse:
        response, admission = await self._admitted_call(
            ctx,
            request.model,
            lambda: _embedding_tokens(request),
            0,
            lambda t: t.provider.embed(request, t.model, ctx),
        )
        if response.usage is not None:
            tokens = response.usage.prompt_tokens
            ctx.usage = Usage(prompt_tokens=tokens, total_tokens=response.usage.total_tokens)
        self.meter.settle(ctx, admission, ctx.usage)
        return response

    async def _admitted_call(
        self,
        ctx: RequestContext,
        model: str,
        count_prompt: Callable[[], int],
        output_tokens: int | None,
        call: Callable[[Target], Awaitable[T]],
    ) -> tuple[T, Admission | None]:
        """Route, admit against limits and budgets, call. A call that fails is settled here
        (its estimates given back); a successful one is settled by the caller, with usage."""
        route = self._route(ctx, model)
        meter = self.meter
        admission = meter.charge(ctx, route, count_prompt, output_tokens)
        if admission is not None:
            admission = (
                meter.decide_now(ctx, admission)
                if meter.synchronous
                else await meter.decide(ctx, admission)
            )
        try:
            return await self._call(ctx, route, call), admission
        except BaseException:
            self.meter.settle(ctx, admission, None)
            raise

    def _route(self, ctx: RequestContext, model: str) -> Route:
        ctx.model = model
        return self.resolve(ctx, model)

    async def _call(
        self, ctx: RequestContext, route: Route, call: Callable[[Target], Awaitable[T]]
    ) -> T:
        targets = route.targets
        last = len(targets) - 1
        for index, target in enumerate(targets):
            try:
                return await call(target)
            except GatewayError as error:
                if index == last or error.status not in RETRYABLE_STATUSES:
                    raise
                ctx.decisions.append(
                    f"failover:{target.provider.name}/{target.model}:{error.status}"
                )
        raise AssertionError("a route has at least one target")


class AccountedStream:
    """Passes a stream through and records its usage on the context.

    The upstream's final usage chunk wins; a stream that ends without one (some
    OpenAI-compatible servers, an interrupted stream) gets usage counted from
    the request and the text that went through, marked as estimated.
    """

    def __init__(
        self,
        inner: ChunkStream,
        ctx: RequestContext,
        request: ChatRequest,
        on_done: Callable[[], None] = lambda: None,
    ) -> None:
        self._inner = inner
        self._ctx = ctx
        self._request = request
        self._on_done: Callable[[], None] | None = on_done
        self._pieces: list[str] = []  # the text that went through, for an estimate

    def __aiter__(self) -> AsyncIterator[ChunkBatch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[ChunkBatch]:
        ctx = self._ctx
        pieces = self._pieces
        try:
            async for batch in self._inner:
                for chunk in batch.chunks:
                    if chunk.usage is not None:
                        ctx.usage = chunk.usage
                    for choice in chunk.choices:
                        delta = choice.delta
                        if delta.content:
                            pieces.append(delta.content)
                        if delta.tool_calls:
                            pieces.extend(
                                (call.function.name or "") + (call.function.arguments or "")
                                for call in delta.tool_calls
                                if call.function is not None
                            )
                yield batch
        finally:
            self._done()

    def _done(self) -> None:
        """Record usage and settle the call, once, however the stream ended: read to the
        end, cut by the client (``aclose`` comes first then), or never read."""
        on_done, self._on_done = self._on_done, None
        if on_done is None:
            return
        ctx = self._ctx
        if ctx.usage is None:
            request = self._request
            ctx.usage = estimate_usage(request, "".join(self._pieces), request.model)
            ctx.usage_estimated = True
        on_done()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._done()  # a stream closed before it was read still frees its limits


def _embedding_tokens(request: EmbeddingRequest) -> int:
    """The tokens of an embeddings input, for the admission estimate."""
    value = request.input
    if isinstance(value, str):
        return heuristic_count(value)
    return sum(
        heuristic_count(item)
        if isinstance(item, str)
        else (1 if isinstance(item, int) else len(item))
        for item in value
    )

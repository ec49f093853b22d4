"""The request corridor, written as one story per operation.

authenticate -> authorize -> admit -> inspect input -> cache -> route -> call
-> inspect output -> account. Identity, limits, guardrails, caching and
accounting plug in here as explicit steps as they are built; today the
corridor resolves the model, routes it to its deployments (in order, failing
over on retryable errors before any byte reached the client) and records what
happened on the request context.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from gatewise.core.catalog import ModelCatalog, Route, Target
from gatewise.core.context import RequestContext
from gatewise.core.errors import GatewayError
from gatewise.core.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelCard,
)
from gatewise.providers.base import ChunkStream

T = TypeVar("T")

# Worth trying the next deployment: throttled, upstream broken or unreachable.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class Pipeline:
    def __init__(self, catalog: ModelCatalog) -> None:
        self.catalog = catalog

    def models(self, ctx: RequestContext) -> list[ModelCard]:
        return self.catalog.cards()

    def model(self, ctx: RequestContext, model: str) -> ModelCard:
        return self.catalog.resolve(model).card

    async def chat(self, ctx: RequestContext, request: ChatRequest) -> ChatResponse:
        route = self._route(ctx, request.model)
        response = await self._call(ctx, route, lambda t: t.provider.chat(request, t.model, ctx))
        ctx.usage = response.usage
        return response

    async def chat_stream(self, ctx: RequestContext, request: ChatRequest) -> ChunkStream:
        """Open the upstream stream; chunks flow to the front door as they arrive."""
        route = self._route(ctx, request.model)
        return await self._call(ctx, route, lambda t: t.provider.chat_stream(request, t.model, ctx))

    async def embeddings(self, ctx: RequestContext, request: EmbeddingRequest) -> EmbeddingResponse:
        route = self._route(ctx, request.model)
        return await self._call(ctx, route, lambda t: t.provider.embed(request, t.model, ctx))

    def _route(self, ctx: RequestContext, model: str) -> Route:
        ctx.model = model
        return self.catalog.resolve(model)

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

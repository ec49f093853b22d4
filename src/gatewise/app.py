"""The ASGI application: routes, the lifespan, and error handling around every handler."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

from gatewise.config.models import Config
from gatewise.core.errors import GatewayError, MethodNotAllowedError, NotFoundError
from gatewise.http.anthropic import AnthropicFrontDoor
from gatewise.http.asgi import (
    ClientDisconnected,
    HTTPRequest,
    Receive,
    Scope,
    Send,
    send_json,
)
from gatewise.http.models import ModelsEndpoint
from gatewise.http.openai import OpenAIFrontDoor
from gatewise.http.responses import ResponsesFrontDoor
from gatewise.runtime import Runtime, build_runtime

log = logging.getLogger("gatewise")

Handler = Callable[[HTTPRequest, Send], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths served by the admin API (FastAPI, with its own authentication and docs).
ADMIN_PREFIX = "/admin/"


class FrontDoor(Protocol):
    """What the app needs of a front door beyond its handlers: its error format."""

    async def send_error(self, send: Send, request: HTTPRequest, error: GatewayError) -> None: ...


@dataclass(frozen=True, slots=True)
class Route:
    """The handlers of one path by method, and the front door whose error format it speaks.

    Every route authenticates its caller before the handler runs, unless ``public``.
    """

    methods: dict[str, Handler]
    door: FrontDoor
    public: bool = False


class GatewayApp:
    """One gateway: a ``Runtime`` behind the front doors."""

    def __init__(self, runtime: Runtime, *, tune_gc: bool = False) -> None:
        self.runtime = runtime
        self._tune_gc = tune_gc  # only in a server process of its own, not in tests
        self.started = False
        self.draining = False
        self._start_lock = asyncio.Lock()
        server = runtime.config.server
        self.access_log = server.access_log
        openai = self.openai = OpenAIFrontDoor(runtime.pipeline, server.max_request_body_bytes)
        anthropic = AnthropicFrontDoor(runtime.pipeline, server.max_request_body_bytes)
        models = ModelsEndpoint(openai, anthropic)
        responses = ResponsesFrontDoor(
            runtime.pipeline, runtime.responses, server.max_request_body_bytes, openai
        )
        self.routes: dict[str, Route] = {
            "/v1/chat/completions": Route({"POST": openai.chat_completions}, openai),
            "/v1/embeddings": Route({"POST": openai.embeddings}, openai),
            "/v1/models": Route({"GET": models.list}, models),
            "/v1/responses": Route({"POST": responses.create}, responses),
            "/v1/messages": Route({"POST": anthropic.messages}, anthropic),
            "/v1/messages/count_tokens": Route({"POST": anthropic.count_tokens}, anthropic),
            "/healthz": Route({"GET": self.healthz}, openai, public=True),
            "/readyz": Route({"GET": self.readyz}, openai, public=True),
        }
        # Paths with a variable tail, matched by prefix: (prefix, route).
        self.prefix_routes: list[tuple[str, Route]] = [
            ("/v1/models/", Route({"GET": models.retrieve}, models)),
            (
                "/v1/responses/",
                Route({"GET": responses.retrieve, "DELETE": responses.delete}, responses),
            ),
        ]
        self.authenticator = runtime.authenticator
        self.accounting = runtime.accounting
        self.admin: ASGIApp | None = None  # the admin API, built at start (FastAPI is heavy)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["path"].startswith(ADMIN_PREFIX):
                await self._admin(scope, receive, send)
                return
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.started:
            await self._start()
        assert self.admin is not None
        await self.admin(scope, receive, send)

    def _route(self, path: str) -> Route | None:
        route = self.routes.get(path)
        if route is None:
            for prefix, candidate in self.prefix_routes:
                if path.startswith(prefix) and len(path) > len(prefix):
                    return candidate
        return route

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.started:
            await self._start()  # servers without lifespan support start us lazily
        request = HTTPRequest(scope, receive)
        route = self._route(request.path)
        door: FrontDoor = route.door if route is not None else self.openai
        try:
            if route is None:
                raise NotFoundError(f"Invalid URL ({request.method} {request.path})")
            handler = route.methods.get(request.method)
            if handler is None:
                allowed = ", ".join(sorted(route.methods))
                raise MethodNotAllowedError(
                    f"Method {request.method} is not allowed on {request.path}; use {allowed}.",
                    headers={"allow": allowed},
                )
            if not route.public:
                request.ctx.principal = await self.authenticator.authenticate(request.headers)
            await handler(request, send)
        except GatewayError as error:
            request.ctx.status = error.status
            await door.send_error(send, request, error)
        except ClientDisconnected:
            request.ctx.status = 499
        except asyncio.CancelledError:
            if not request.disconnected:
                raise
            request.ctx.status = 499  # the client left: the upstream call was cancelled
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except Exception:
            log.exception("unhandled error", extra={"request_id": request.ctx.request_id})
            request.ctx.status = 500
            internal = GatewayError("The gateway hit an internal error.", code="internal_error")
            await door.send_error(send, request, internal)
        finally:
            request.stop_watch()
            self.accounting.record(request.ctx)
            if self.access_log:
                self._log_access(request)

    def _log_access(self, request: HTTPRequest) -> None:
        ctx = request.ctx
        log.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            ctx.status,
            ctx.elapsed_ms(),
            extra={
                "request_id": ctx.request_id,
                "model": ctx.model or None,
                "provider": ctx.provider,
                "status": ctx.status,
                "stream": ctx.stream,
                "prompt_tokens": ctx.usage.prompt_tokens if ctx.usage else None,
                "completion_tokens": ctx.usage.completion_tokens if ctx.usage else None,
                "usage_estimated": ctx.usage_estimated or None,
                "cost_micros": ctx.cost_micros,
                "decisions": ctx.decisions or None,
                "caller": ctx.principal.name if ctx.principal else None,
                "tenant_id": ctx.principal.tenant_id if ctx.principal else None,
            },
        )

    async def healthz(self, request: HTTPRequest, send: Send) -> None:
        await send_json(send, 200, b'{"status":"ok"}', request.ctx)

    @property
    def ready(self) -> bool:
        return self.started and not self.draining

    async def readyz(self, request: HTTPRequest, send: Send) -> None:
        status = "ready" if self.ready else ("draining" if self.draining else "starting")
        body = orjson.dumps({"status": status, "models": len(self.runtime.catalog)})
        await send_json(send, 200 if self.ready else 503, body, request.ctx)

    async def _start(self) -> None:
        async with self._start_lock:
            if not self.started:
                await self.runtime.start()
                self.admin = self._build_admin()
                if self._tune_gc:
                    tune_gc()
                self.started = True

    def _build_admin(self) -> ASGIApp:
        from gatewise.admin.app import create_admin_app

        runtime = self.runtime
        return create_admin_app(
            runtime.identity,
            runtime.authenticator.authenticate,
            lambda: [card.id for card in runtime.catalog.cards()],
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.draining = True  # uvicorn has drained the connections by now
                await self.runtime.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def tune_gc() -> None:
    """Fewer, cheaper garbage collections on the hot path.

    Everything built at start-up (config, catalog, directory, imported modules) is
    moved out of the collector's sight (``gc.freeze``), and the youngest generation
    is collected every 10,000 allocations instead of 700: requests allocate many
    short-lived objects, almost none of them in reference cycles.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 50)


def create_app(
    config: Config, config_dir: Path | None = None, *, tune_gc: bool = False
) -> GatewayApp:
    return GatewayApp(build_runtime(config, config_dir), tune_gc=tune_gc)

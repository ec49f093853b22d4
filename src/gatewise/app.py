"""The ASGI application: the live generation's routes, the lifespan, errors around handlers.

Every request reads the current ``Generation`` once and is served by it to the
end, so ``swap`` can put a new generation (a reloaded config) in place at any
moment: new requests take the new one, requests in flight finish on the old
one, which is closed once they are done.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from gatewise.config.models import Config
from gatewise.core.errors import GatewayError, MethodNotAllowedError, NotFoundError
from gatewise.http.asgi import ClientDisconnected, HTTPRequest, Receive, Scope, Send, send_json
from gatewise.http.routes import ErrorFormat
from gatewise.runtime.generation import Generation, build_generation
from gatewise.runtime.prepare import prepare
from gatewise.runtime.services import Services, build_services

if TYPE_CHECKING:
    from gatewise.runtime.reload import Reloader

log = logging.getLogger("gatewise")

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths served by the admin API (FastAPI, with its own authentication and docs).
ADMIN_PREFIX = "/admin/"
#: The process's own health checks (public: load balancers call them without a key).
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})


class GatewayApp:
    """One gateway worker: long-lived ``Services`` and the live config ``Generation``."""

    def __init__(
        self, services: Services, generation: Generation, *, tune_gc: bool = False
    ) -> None:
        self.services = services
        #: The live generation; read once per request, replaced whole by ``swap``.
        self.generation = generation
        self._tune_gc = tune_gc  # only in a server process of its own, not in tests
        self.started = False
        self.draining = False
        self._start_lock = asyncio.Lock()
        self.admin: ASGIApp | None = None  # the admin API, built at start (FastAPI is heavy)
        #: Reloads the config (SIGHUP, watcher, admin API) when served from a file.
        self.reloader: Reloader | None = None
        # The request head's limits, read by the server's protocol once per connection (a
        # server setting: a reloaded generation does not change them).
        server = generation.config.server
        self.max_header_bytes = server.max_header_bytes
        self.max_headers = server.max_headers
        if services.metrics is not None:  # the in-flight gauge reads the app's own count
            services.metrics.in_flight = lambda: self.generation.in_flight

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

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.started:
            await self._start()  # servers without lifespan support start us lazily
        generation = self.generation
        generation.in_flight += 1
        request = HTTPRequest(scope, receive)
        ctx = request.ctx
        errors: ErrorFormat = generation.unrouted
        try:
            if request.path in HEALTH_PATHS:
                await self._health(request, send)
                return
            found = generation.routes.match(request.path)
            if found is None:
                raise NotFoundError(f"Invalid URL ({request.method} {request.path})")
            endpoint, request.params = found
            errors = endpoint.errors
            handler = endpoint.methods.get(request.method)
            if handler is None:
                allowed = ", ".join(sorted(endpoint.methods))
                raise MethodNotAllowedError(
                    f"Method {request.method} is not allowed on {request.path}; use {allowed}.",
                    headers={"allow": allowed},
                )
            if not endpoint.public:
                principal = await generation.authenticator.authenticate(request.headers)
                request.principal = ctx.principal = principal
            await handler(request, send)
        except GatewayError as error:
            ctx.status = error.status
            await errors.send_error(send, request, error)
        except ClientDisconnected:
            ctx.status = 499
        except asyncio.CancelledError:
            if not request.disconnected:
                raise
            ctx.status = 499  # the client left: the upstream call was cancelled
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except Exception:
            log.exception("unhandled error", extra={"request_id": ctx.request_id})
            ctx.status = 500
            internal = GatewayError("The gateway hit an internal error.", code="internal_error")
            await errors.send_error(send, request, internal)
        finally:
            request.stop_watch()
            if generation.observers.watch_finished:
                generation.observers.finished(ctx)
            generation.in_flight -= 1
            if generation.draining is not None and generation.in_flight == 0:
                generation.draining.set()

    # --- health ------------------------------------------------------------------------

    async def _health(self, request: HTTPRequest, send: Send) -> None:
        if request.method != "GET":
            raise MethodNotAllowedError(
                f"Method {request.method} is not allowed on {request.path}; use GET.",
                headers={"allow": "GET"},
            )
        if request.path == "/healthz":
            await send_json(send, 200, b'{"status":"ok"}', request.ctx)
            return
        status = "ready" if self.ready else ("draining" if self.draining else "starting")
        body = orjson.dumps({"status": status, "models": len(self.generation.catalog)})
        await send_json(send, 200 if self.ready else 503, body, request.ctx)

    @property
    def ready(self) -> bool:
        return self.started and not self.draining

    # --- generations -------------------------------------------------------------------

    async def swap(self, generation: Generation) -> Generation:
        """Serve ``generation`` from now on; the old one finishes its requests, then closes.

        Returns the old generation once it is closed."""
        await generation.start()
        old, self.generation = self.generation, generation
        if self.services.audit is not None:  # a reload is a config load for the audit trail
            self.services.audit.config_loaded(generation.config, "reload")
        await old.drained()
        await old.close()
        return old

    # --- lifespan ----------------------------------------------------------------------

    async def _start(self) -> None:
        async with self._start_lock:
            if not self.started:
                await self.services.start()
                await self.generation.start()
                self.admin = self._build_admin()
                if self.reloader is not None:
                    self.reloader.start()
                if self._tune_gc:
                    tune_gc()
                self.started = True

    def _build_admin(self) -> ASGIApp:
        from gatewise.admin.app import AdminOptions, create_admin_app

        def options() -> AdminOptions:
            config = self.generation.config
            access_log = config.observability.logs.request_lines(config.server.access_log)
            return AdminOptions(docs=config.admin.docs, access_log=access_log)

        services = self.services
        return create_admin_app(
            services.identity,
            lambda headers: self.generation.authenticator.authenticate(headers),
            lambda: [
                *(card.id for card in self.generation.catalog.cards()),
                *self.generation.prompts.access_names(),  # subscriptions to prompt:<name>
            ],
            options=options,
            changed=services.identity_cache.refresh,  # a change holds here at once
            deployment_view=lambda: self.generation.corridor.router.deployments(),
            config_control=self.reloader,
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
                if self.reloader is not None:
                    await self.reloader.close()  # and closes generations a reload retired
                await self.generation.close()
                await self.services.close()
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
    prepared = prepare(config, config_dir)
    for line in prepared.skipped:
        log.info(line)
    if config.auth.mode == "open":
        log.warning(
            "auth.mode is open: callers without a gateway key are served anonymously; "
            "use auth.mode: keys outside local trials"
        )
    services = build_services(config, config_dir, prepared.store_url)
    generation = build_generation(config, services, config_dir, prepared)
    return GatewayApp(services, generation, tune_gc=tune_gc)

"""The admin API's factory: one FastAPI app whose routes all live under /admin/v1.

The gateway mounts it for every path starting with ``/admin/`` and passes the
ASGI scope unchanged, so every route path here is absolute. Authentication is
a function the gateway hands in (``Authenticate``); the store is the identity
store; ``options`` is the config's say (docs access, access log), read per
request; ``changed`` refreshes the gateway's identity cache and is awaited
after every change, before the answer goes out (``trail.py``). Each request
gets an id (the caller's ``x-request-id`` if well-formed), echoed in the
response and written to the audit trail with every change and every refusal.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatewise import __version__
from gatewise.admin import (
    analytics,
    apps,
    audit,
    config,
    deployments,
    docs,
    keys,
    me,
    requests,
    subscriptions,
    teams,
    tenants,
    usage,
    users,
)
from gatewise.admin.authz import AdminContext, AdminOptions, Authenticate
from gatewise.admin.errors import INTERNAL_ERROR, envelope, install_error_handlers
from gatewise.admin.schemas import ErrorOut
from gatewise.admin.trail import REFUSAL_BURST, Trail
from gatewise.core.context import new_request_id
from gatewise.store.identity import IdentityStore

log = logging.getLogger("gatewise.admin")
__all__ = ["AdminOptions", "create_admin_app"]

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Invalid input (the `param` names the field)"},
    401: {"model": ErrorOut, "description": "Missing, unknown, revoked or expired credential"},
    403: {"model": ErrorOut, "description": "The caller's role lacks the permission"},
    404: {"model": ErrorOut, "description": "No such object in the caller's scope"},
    409: {"model": ErrorOut, "description": "Conflicts with the current state"},
}
DESCRIPTION = """\
Manage tenants, teams, apps (service accounts), users, virtual keys and model
subscriptions, and read the audit trail.

* **Authentication**: `Authorization: Bearer gw-...` (a gateway key) or an OIDC token.
* **Times** are UTC epoch seconds (finite numbers from 0 to 253402300799, the end of
  year 9999), in requests and responses.
* **Lists** take `limit` (1-200, default 50) and `offset` (0-1,000,000,000) and answer
  `{"data": [...], "total": N, "limit": L, "offset": O}`.
* **PATCH** applies the fields present; an empty body changes nothing (200, the object
  as it is, no audit entry).
* **Errors** answer `{"error": {"message", "type", "param", "code"}}`; invalid input is
  always 400. Objects outside the caller's tenant answer 404, like missing ones.
* **Refusals** (401, 403, and 404 on another tenant's object) are written to the audit
  trail (`action=refuse`), so probing is visible to platform admins.
* Every response carries `x-request-id` (yours, if you send a well-formed one); the
  audit trail records it with each change.
"""


def create_admin_app(
    store: IdentityStore,
    authenticate: Authenticate,
    model_names: Callable[[], list[str]],
    *,
    options: Callable[[], AdminOptions] = AdminOptions,
    changed: Callable[[], Awaitable[object]] | None = None,
    refusal_burst: float = REFUSAL_BURST,
    deployment_view: deployments.DeploymentView | None = None,
    config_control: config.ConfigControl | None = None,
) -> FastAPI:
    """The admin API over ``store``; ``authenticate`` turns request headers into a Principal.

    ``refusal_burst``: how many refusals may be audited at once before the rate bound
    (``REFUSALS_PER_SECOND``) applies."""
    app = FastAPI(
        title="Gatewise admin API",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # docs.py serves them, without a CDN
        openapi_url=None,
        redoc_url=None,
    )
    app.state.admin = AdminContext(store, authenticate, model_names, options)
    app.state.deployments = deployment_view
    app.state.config_control = config_control
    install_error_handlers(app)
    app.include_router(me.router, responses={401: _ERRORS[401]})
    for module in (tenants, teams, apps, users, keys, subscriptions, audit, usage, deployments):
        app.include_router(module.router, responses=_ERRORS)
    app.include_router(analytics.router, responses=_ERRORS)
    app.include_router(requests.router, responses=_ERRORS)
    app.include_router(config.router, responses=_ERRORS)
    app.include_router(docs.router)
    trail = Trail(store, changed, lambda: options().access_log, refusal_burst=refusal_burst)
    app.add_middleware(RequestScope, trail=trail)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app


class RequestScope:
    """Gives each request its id (echoed as ``x-request-id``), settles its trail before the
    answer goes out (a refusal audited, the identity cache refreshed after a change), logs
    it once it is over, and turns any unexpected failure into a 500 envelope: logged here
    with its trace, never shown to the caller."""

    def __init__(self, app: ASGIApp, trail: Trail) -> None:
        self.app = app
        self.trail = trail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
                await self.trail.before_answer(scope, status)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("admin request %s %s failed", scope.get("method"), scope.get("path"))
            if not status:
                await envelope(500, INTERNAL_ERROR)(scope, receive, send_with_id)
        finally:
            self.trail.finished(scope, status or 500, began)


def _request_id(scope: Scope) -> str:
    """The id the gateway already gave this request, else the caller's, else a new one."""
    given = scope.get("state", {}).get("request_id")
    if isinstance(given, str) and _VALID_REQUEST_ID.match(given):
        return given
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _VALID_REQUEST_ID.match(text) else new_request_id()
    return new_request_id()


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's schema, told the truth: invalid input is a 400 envelope (never a 422),
    and every route but the docs takes a bearer credential."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                operation.get("responses", {}).pop("422", None)
        models = schema.get("components", {}).get("schemas", {})
        models.pop("HTTPValidationError", None)
        models.pop("ValidationError", None)
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "gw-... key or JWT"}
        }
        schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    return build

"""Every admin failure as one envelope: ``{"error": {"message", "type", "param", "code"}}``.

The same shape as the OpenAI routes, so one client-side error path serves both.
Invalid input is always 400 (FastAPI's own 422 bodies are rewritten), store
exceptions map to 404/409/400, and nothing ever carries a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gatewise.admin.authz import OutOfScope
from gatewise.admin.trail import Refusal, note_refusal
from gatewise.core.errors import GatewayError
from gatewise.store.identity import Conflict, Invalid, NotFound

log = logging.getLogger("gatewise.admin")

#: ``type`` and default ``code`` of the envelope per HTTP status.
_KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_value"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_denied", "permission_denied"),
    404: ("not_found", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    409: ("conflict", "conflict"),
    500: ("server_error", "internal_error"),
}
INTERNAL_ERROR = "The admin API failed to handle this request; the failure was logged."


class ConflictError(GatewayError):
    """The change collides with the current state (a taken name, a finished workflow...)."""

    status = 409
    type = "conflict"
    code = "conflict"


def envelope(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    kind, default_code = _KINDS.get(status, ("invalid_request_error", "error"))
    if status == 401:
        headers = {"www-authenticate": "Bearer", **(headers or {})}
    error = {"message": message, "type": kind, "param": param, "code": code or default_code}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    if isinstance(exc, OutOfScope):
        note_refusal(request, Refusal(404, exc.message, exc.kind, exc.object_id))
    elif exc.status in (401, 403):
        note_refusal(request, Refusal(exc.status, exc.message))
    # Admin types are fixed per status; the code says more (e.g. model_not_found).
    code = exc.code if exc.status not in (401, 403) else None
    return envelope(exc.status, exc.message, param=exc.param, code=code, headers=exc.headers)


def _store_param(exc: Exception) -> str | None:
    for name in ("param", "field"):
        value = getattr(exc, name, None)
        if isinstance(value, str):
            return value
    return None


def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return envelope(404, str(exc) or "Not found.", param=_store_param(exc))


def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return envelope(409, str(exc) or "Conflict.", param=_store_param(exc))


def _invalid(_: Request, exc: Exception) -> JSONResponse:
    return envelope(400, str(exc) or "Invalid value.", param=_store_param(exc))


def _location(loc: Sequence[Any]) -> str | None:
    """``("body", "owner", 0)`` -> ``owner[0]``: the field as the client wrote it."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if not errors:
        return envelope(400, "The request is invalid.")
    first = errors[0]
    param = _location(first.get("loc", ()))
    kind = str(first.get("type", "invalid_value"))
    message = str(first.get("msg", "invalid value"))
    if kind == "json_invalid":
        return envelope(400, "The request body is not valid JSON.", code="invalid_json")
    if kind == "missing":
        text = f"Missing required parameter: '{param}'." if param else "The body is missing."
        return envelope(400, text, param=param, code="missing")
    if kind == "extra_forbidden":
        return envelope(400, f"Unknown parameter: '{param}'.", param=param, code="unknown")
    where = f" for '{param}'" if param else ""
    return envelope(400, f"Invalid value{where}: {message}.", param=param, code="invalid_value")


def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return envelope(404, "No such admin route.")
    if exc.status_code == 405:
        return envelope(405, "This method is not allowed on this admin route.")
    return envelope(exc.status_code, str(exc.detail))


def install_error_handlers(app: FastAPI) -> None:
    """Render every expected failure in the envelope (unexpected ones: see ``app.py``)."""
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(Invalid, _invalid)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)

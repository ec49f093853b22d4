"""/admin/docs and /admin/openapi.json: the API's documentation, served by the gateway alone.

Swagger UI's files come from the ``fastapi-offline`` package (its bundled copy of the
Swagger UI distribution), the page's own script and style from ``admin/static``; nothing
is loaded from a CDN, so the docs work offline and no third-party script ever runs on the
admin origin. Every answer here carries a Content-Security-Policy that allows the
gateway's own origin only (no inline script or style, no framing).

``admin.docs`` (read per request, so a reload applies at once) decides who may read:

* ``authenticated`` (the default): the OpenAPI document needs a credential, like every
  admin route (any role; 401 otherwise). The page and Swagger UI's files are the same
  static bytes for everyone and hold nothing of this gateway, so they load without one
  (a browser cannot send a bearer token when it opens a page); the page asks for the
  key and sends it with the document's request.
* ``public``: the document too is readable without a credential.
* ``off``: all of it answers 404.
"""

from __future__ import annotations

import functools
import importlib.resources

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gatewise.admin.authz import AdminContext, DocsMode, authenticate

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
#: Served asset -> (package holding it, folder in the package).
_ASSETS = {
    "swagger-ui-bundle.js": ("fastapi_offline", "static"),
    "swagger-ui.css": ("fastapi_offline", "static"),
    "favicon.png": ("fastapi_offline", "static"),
    "docs.js": ("gatewise.admin", "static"),
    "docs.css": ("gatewise.admin", "static"),
}
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gatewise admin API</title>
<link rel="icon" type="image/png" href="/admin/docs/favicon.png">
<link rel="stylesheet" href="/admin/docs/swagger-ui.css">
<link rel="stylesheet" href="/admin/docs/docs.css">
</head>
<body>
<form id="credential" class="gw-credential" hidden>
<label for="credential-key">This documentation needs a gateway key (<code>gw-...</code>) or
an OIDC token. It is kept in this browser tab only and sent to this gateway only.</label>
<input id="credential-key" name="key" type="password" autocomplete="off" required>
<button type="submit">Show the API</button>
<p id="credential-note" class="gw-credential-note"></p>
</form>
<div id="swagger-ui" data-openapi="/admin/openapi.json" data-credential="{credential}"></div>
<script src="/admin/docs/swagger-ui-bundle.js"></script>
<script src="/admin/docs/docs.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


def _mode(request: Request) -> DocsMode:
    context: AdminContext = request.app.state.admin
    mode = context.options().docs
    if mode == "off":
        raise StarletteHTTPException(404)
    return mode


@router.get("/admin/docs")
async def docs_page(request: Request) -> Response:
    credential = "required" if _mode(request) == "authenticated" else "optional"
    page = _PAGE.replace("{credential}", credential)
    headers = {**SECURITY_HEADERS, "cache-control": "no-cache"}
    return Response(page, media_type="text/html; charset=utf-8", headers=headers)


@router.get("/admin/docs/{name}")
async def docs_asset(request: Request, name: str) -> Response:
    _mode(request)
    if name not in _ASSETS:
        raise StarletteHTTPException(404)
    headers = {**SECURITY_HEADERS, "cache-control": "public, max-age=3600"}
    return Response(_asset(name), media_type=_TYPES[name[name.rindex(".") :]], headers=headers)


@router.get("/admin/openapi.json")
async def openapi_document(request: Request) -> Response:
    if _mode(request) == "authenticated":
        await authenticate(request)
    headers = {**SECURITY_HEADERS, "cache-control": "no-store"}
    return JSONResponse(request.app.openapi(), headers=headers)


@functools.cache
def _asset(name: str) -> bytes:
    package, folder = _ASSETS[name]
    return (importlib.resources.files(package) / folder / name).read_bytes()

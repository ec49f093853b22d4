"""The admin API's documentation: Swagger UI served from the package (no CDN, works
offline), under a Content-Security-Policy that allows only the gateway's own origin, and
an OpenAPI document that needs a credential unless ``admin.docs`` is ``public``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from gatewise.admin.app import create_admin_app
from gatewise.identity.roles import Role
from tests.integration import admin_support as support
from tests.integration.admin_support import MODELS, AdminClient, Env, StoreHolder, serve

template, server, env = support.template, support.server, support.env
pytestmark = pytest.mark.asyncio(loop_scope="module")


def csp(reply: support.Reply) -> dict[str, str]:
    policy = reply.headers["content-security-policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


def assert_only_self(reply: support.Reply) -> None:
    policy = csp(reply)
    assert policy["default-src"] == "default-src 'none'"
    for directive in ("script-src", "style-src", "connect-src"):
        assert policy[directive] == f"{directive} 'self'", policy
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert reply.headers["x-content-type-options"] == "nosniff"


async def test_the_docs_page_loads_everything_from_the_gateway(env: Env) -> None:
    page = await env.client.call("GET", "/admin/docs")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert_only_self(page)
    assert "://" not in page.text  # no CDN, no other origin
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all(body.strip() == "" for _, body in scripts)  # nothing inline
    assert not re.search(r"\son[a-z]+\s*=", page.text, re.I)  # no inline event handlers
    assert "<style" not in page.text and "style=" not in page.text
    assets = re.findall(r'(?:src|href)="(/admin/docs/[^"]+)"', page.text)
    kinds = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    assert {asset.rsplit(".", 1)[1] for asset in assets} == {"js", "css", "png"}
    for asset in assets:
        reply = await env.client.call("GET", asset)
        assert reply.status == 200, asset
        assert reply.headers["content-type"].startswith(kinds["." + asset.rsplit(".", 1)[1]])
        assert_only_self(reply)
    bundle = await env.client.call("GET", "/admin/docs/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text and len(bundle.text) > 500_000


@pytest.mark.parametrize(
    "path", ["/admin/docs/nothing.js", "/admin/docs/..%2F..%2Fapp.py", "/admin/docs/redoc.js"]
)
async def test_only_the_docs_assets_are_served(env: Env, path: str) -> None:
    reply = await env.client.call("GET", path)
    assert reply.status == 404 and reply.error["type"] == "not_found"


async def test_the_openapi_document_needs_a_credential_by_default(env: Env) -> None:
    anonymous = await env.client.call("GET", "/admin/openapi.json")
    assert anonymous.status == 401 and anonymous.error["type"] == "authentication_error"
    schema = await env.client.call("GET", "/admin/openapi.json", env.world.key(Role.CONSUMER))
    assert schema.status == 200 and "/admin/v1/keys" in schema.json["paths"]
    assert_only_self(schema)
    page = await env.client.call("GET", "/admin/docs")
    assert 'data-credential="required"' in page.text


@pytest_asyncio.fixture(loop_scope="module", params=["public", "off"])
async def docs_mode(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, AdminClient]]:
    from gatewise.admin.app import AdminOptions  # type: ignore[attr-defined,unused-ignore]

    holder = StoreHolder()
    mode = request.param
    app = create_admin_app(
        holder,  # type: ignore[arg-type]
        holder.authenticate,
        MODELS.copy,
        options=lambda: AdminOptions(docs=mode),
    )
    async with serve(app) as client:
        yield mode, client


async def test_public_and_off(docs_mode: tuple[str, AdminClient]) -> None:
    mode, client = docs_mode
    replies: dict[str, Any] = {
        path: await client.call("GET", path)
        for path in ("/admin/docs", "/admin/docs/swagger-ui.css", "/admin/openapi.json")
    }
    if mode == "off":
        assert {path: r.status for path, r in replies.items()} == dict.fromkeys(replies, 404)
        return
    assert {path: r.status for path, r in replies.items()} == dict.fromkeys(replies, 200)
    assert 'data-credential="optional"' in replies["/admin/docs"].text
    assert "/admin/v1/me" in replies["/admin/openapi.json"].json["paths"]

"""The ``admin:`` section: who may read the admin API's documentation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gatewise.config.base import Strict


class AdminConfig(Strict):
    docs: Literal["public", "authenticated", "off"] = Field(
        "authenticated",
        description=(
            "Who may read /admin/docs and /admin/openapi.json. authenticated: the OpenAPI "
            "document needs a gateway key or token (any role; the page asks for it); public: "
            "anyone who reaches the port; off: 404. Swagger UI's files are always served by "
            "the gateway itself, never from a CDN."
        ),
    )

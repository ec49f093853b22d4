"""``GET /v1/models`` and ``GET /v1/models/{id}`` for both SDK families.

The OpenAI and Anthropic SDKs call the same paths but expect different
shapes; Anthropic clients always send ``anthropic-version``, so that header
picks the shape (and the error envelope). ``ClientErrors`` makes the same
choice for paths no route serves.
"""

from __future__ import annotations

import time

import orjson

from gatewise.core.errors import GatewayError
from gatewise.core.types import ModelCard
from gatewise.http.anthropic import AnthropicFrontDoor
from gatewise.http.asgi import HTTPRequest, Send, send_json
from gatewise.http.openai import OpenAIFrontDoor


def wants_anthropic(request: HTTPRequest) -> bool:
    """Whether the client speaks Anthropic's API (its SDKs always send the version)."""
    return b"anthropic-version" in request.headers


class ClientErrors:
    """Errors in the format of the client's SDK: Anthropic's envelope for Anthropic clients,
    OpenAI's for everyone else."""

    def __init__(self, openai: OpenAIFrontDoor, anthropic: AnthropicFrontDoor) -> None:
        self.openai = openai
        self.anthropic = anthropic

    async def send_error(self, send: Send, request: HTTPRequest, error: GatewayError) -> None:
        door = self.anthropic if wants_anthropic(request) else self.openai
        await door.send_error(send, request, error)


class ModelsEndpoint(ClientErrors):
    async def list(self, request: HTTPRequest, send: Send) -> None:
        if not wants_anthropic(request):
            await self.openai.list_models(request, send)
            return
        request.ctx.operation = "models"
        cards = self.openai.corridor.models(request.principal)
        body = {
            "data": [_anthropic_model(card) for card in cards],
            "has_more": False,
            "first_id": cards[0].id if cards else None,
            "last_id": cards[-1].id if cards else None,
        }
        await send_json(send, 200, orjson.dumps(body), request.ctx)

    async def retrieve(self, request: HTTPRequest, send: Send) -> None:
        if not wants_anthropic(request):
            await self.openai.retrieve_model(request, send)
            return
        request.ctx.operation = "models"
        card = self.openai.corridor.model(request.principal, request.params["model"])
        await send_json(send, 200, orjson.dumps(_anthropic_model(card)), request.ctx)


def _anthropic_model(card: ModelCard) -> dict[str, str]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(card.created))
    return {"type": "model", "id": card.id, "display_name": card.id, "created_at": created}

"""``GET /v1/models`` and ``GET /v1/models/{id}`` for both SDK families.

The OpenAI and Anthropic SDKs call the same paths but expect different
shapes; the Anthropic SDK always sends ``anthropic-version``, so that header
picks the shape (and the error envelope).
"""

from __future__ import annotations

import time

import orjson

from gatewise.core.errors import GatewayError
from gatewise.core.types import ModelCard
from gatewise.http.anthropic import AnthropicFrontDoor
from gatewise.http.asgi import HTTPRequest, Send, send_json
from gatewise.http.openai import OpenAIFrontDoor

PREFIX = "/v1/models/"


class ModelsEndpoint:
    def __init__(self, openai: OpenAIFrontDoor, anthropic: AnthropicFrontDoor) -> None:
        self.openai = openai
        self.anthropic = anthropic

    @staticmethod
    def _wants_anthropic(request: HTTPRequest) -> bool:
        return b"anthropic-version" in request.headers

    async def send_error(self, send: Send, request: HTTPRequest, error: GatewayError) -> None:
        door = self.anthropic if self._wants_anthropic(request) else self.openai
        await door.send_error(send, request, error)

    async def list(self, request: HTTPRequest, send: Send) -> None:
        if not self._wants_anthropic(request):
            await self.openai.list_models(request, send)
            return
        request.ctx.operation = "models"
        cards = self.openai.pipeline.models(request.ctx)
        body = {
            "data": [_anthropic_model(card) for card in cards],
            "has_more": False,
            "first_id": cards[0].id if cards else None,
            "last_id": cards[-1].id if cards else None,
        }
        await send_json(send, 200, orjson.dumps(body), request.ctx)

    async def retrieve(self, request: HTTPRequest, send: Send) -> None:
        if not self._wants_anthropic(request):
            await self.openai.retrieve_model(request, send)
            return
        request.ctx.operation = "models"
        card = self.openai.pipeline.model(request.ctx, request.path[len(PREFIX) :])
        await send_json(send, 200, orjson.dumps(_anthropic_model(card)), request.ctx)


def _anthropic_model(card: ModelCard) -> dict[str, str]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(card.created))
    return {"type": "model", "id": card.id, "display_name": card.id, "created_at": created}

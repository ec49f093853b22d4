"""Provider ``anthropic``: Anthropic's Messages API (``POST {base_url}/v1/messages``).

Authenticates with ``x-api-key`` and sends ``anthropic-version``.

Native pass-through: a request that came in through the Anthropic front door
(``native``, wire ``anthropic``) is sent on as the client sent it, with only
``model`` (the deployment's) and ``stream`` (set by the operation) changed, so
thinking blocks with their signatures, ``cache_control``, citations settings and
fields the gateway does not know all reach the upstream. Replies keep their
bytes (``attach_raw``; streams: ``ChunkBatch.raw``) for the front door to relay.

Every other request is translated from the canonical (OpenAI chat) form by
``anthropic_request``, answers back by ``anthropic_response`` and streams by
``anthropic_stream``; the translation choices are documented there. In short:

- ``n > 1`` is rejected with a 400 ``invalid_request_error`` (param ``n``).
- ``temperature`` above 1 (Anthropic's maximum) is clamped to 1; outside 0..2 is a 400.
- ``max_tokens`` is required upstream: ``default_max_tokens`` from the config is
  sent when the request sets neither ``max_tokens`` nor ``max_completion_tokens``.
- Thinking comes back as ``reasoning_content`` and ``thinking_blocks`` (with their
  signatures); an assistant message that carries ``thinking_blocks`` (in its
  ``extra``) sends them first in its turn, so tool loops with thinking work from
  OpenAI-format clients too.
- Upstream errors keep their status (529 ``overloaded_error`` stays 529), their
  Anthropic error type and message (credentials redacted); 429s relay ``retry-after``.
- Anthropic has no embeddings API: ``embed`` answers a 400 that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from gatewise.config.providers import AnthropicProviderConfig
from gatewise.config.secrets import resolve
from gatewise.core.errors import InvalidRequestError, UpstreamError, UpstreamProtocolError
from gatewise.core.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    JSONObject,
    NativeBody,
)
from gatewise.providers.anthropic_request import messages_request_body
from gatewise.providers.anthropic_response import decode_message, error_from_response
from gatewise.providers.anthropic_stream import AnthropicChunkStream
from gatewise.providers.openai import build_transport
from gatewise.providers.transport import HTTPTransport


class AnthropicProvider:
    """Speaks the Anthropic Messages API to ``base_url``."""

    kind = "anthropic"
    #: Requests that came in through the Anthropic front door are sent on as the client
    #: sent them (see ``Provider``), and replies keep their bytes for verbatim relay.
    wire = "anthropic"

    def __init__(
        self, name: str, base_url: str, transport: HTTPTransport, *, default_max_tokens: int
    ) -> None:
        self.name = name
        self.messages_url = base_url.rstrip("/") + "/v1/messages"
        self.count_tokens_url = self.messages_url + "/count_tokens"
        self.transport = transport
        self.default_max_tokens = default_max_tokens

    @classmethod
    def from_config(cls, name: str, config: Any, base_dir: Path | None) -> AnthropicProvider:
        assert isinstance(config, AnthropicProviderConfig)
        key = resolve(config.api_key, base_dir).reveal()
        transport = build_transport(
            name,
            config,
            base_dir,
            {"x-api-key": key},
            {"anthropic-version": config.anthropic_version},
        )
        return cls(name, config.base_url, transport, default_max_tokens=config.default_max_tokens)

    async def start(self) -> None:
        await self.transport.start()

    async def close(self) -> None:
        await self.transport.close()

    async def chat(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> ChatResponse:
        body = self._body(request, model, native, stream=False)
        data = await self.transport.call(self.messages_url, body, self._error)
        return decode_message(data)

    async def chat_stream(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> AnthropicChunkStream:
        body = self._body(request, model, native, stream=True)
        response = await self.transport.open_stream(self.messages_url, body, self._error)
        return AnthropicChunkStream(self.transport, response)

    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        raise InvalidRequestError(
            f"The model '{request.model}' is served by Anthropic, which has no embeddings API.",
            param="model",
            code="unsupported_operation",
        )

    async def count_tokens(self, data: JSONObject, model: str) -> int:
        """Anthropic's own count of a ``count_tokens`` body (the client's, for ``model``)."""
        body = dict(data)
        body["model"] = model
        reply = await self.transport.call(self.count_tokens_url, orjson.dumps(body), self._error)
        try:
            count = orjson.loads(reply)["input_tokens"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            count = None
        if type(count) is not int:
            raise UpstreamProtocolError(
                "The upstream answered count_tokens without a whole number of input_tokens."
            )
        return count

    def _body(
        self, request: ChatRequest, model: str, native: NativeBody | None, *, stream: bool
    ) -> bytes:
        if native is not None:
            return native_body(native.data, model, stream=stream)
        return messages_request_body(
            request, model, default_max_tokens=self.default_max_tokens, stream=stream
        )

    def _error(self, status: int, headers: Mapping[str, str], data: bytes) -> UpstreamError:
        return error_from_response(self.name, status, headers, data, self.transport.redact)


def native_body(data: JSONObject, model: str, *, stream: bool) -> bytes:
    """The client's own Messages body for the upstream ``model`` (a shallow copy: only
    ``model`` and ``stream`` change)."""
    body = dict(data)
    body["model"] = model
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return orjson.dumps(body)

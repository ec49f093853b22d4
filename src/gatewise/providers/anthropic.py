"""Provider ``anthropic``: Anthropic's Messages API (``POST {base_url}/v1/messages``).

Authenticates with ``x-api-key`` and sends ``anthropic-version``. Requests are
translated from the canonical (OpenAI chat) form by ``anthropic_request``,
answers back by ``anthropic_response`` and streams by ``anthropic_stream``; the
translation choices are documented there. In short:

- ``n > 1`` is rejected with a 400 ``invalid_request_error`` (param ``n``).
- ``temperature`` above 1 (Anthropic's maximum) is clamped to 1; outside 0..2 is a 400.
- ``max_tokens`` is required upstream: ``default_max_tokens`` from the config is
  sent when the request sets neither ``max_tokens`` nor ``max_completion_tokens``.
- Thinking output is dropped (OpenAI's chat format has no field for it); clients can
  still ask for thinking (``thinking`` passes through), but since thinking blocks are
  not returned they cannot be replayed in a later tool-use turn.
- Upstream errors keep their status (529 ``overloaded_error`` stays 529), their
  Anthropic error type and message (credentials redacted); 429s relay ``retry-after``.
- Anthropic has no embeddings API: ``embed`` answers a 400 that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gatewise.config.models import AnthropicProviderConfig
from gatewise.config.secrets import resolve
from gatewise.core.errors import InvalidRequestError, UpstreamError
from gatewise.core.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
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

    def __init__(
        self, name: str, base_url: str, transport: HTTPTransport, *, default_max_tokens: int
    ) -> None:
        self.name = name
        self.messages_url = base_url.rstrip("/") + "/v1/messages"
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
        body = self._body(request, model, stream=False)
        data = await self.transport.call(self.messages_url, body, self._error)
        return decode_message(data)

    async def chat_stream(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> AnthropicChunkStream:
        body = self._body(request, model, stream=True)
        response = await self.transport.open_stream(self.messages_url, body, self._error)
        return AnthropicChunkStream(self.transport, response)

    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        raise InvalidRequestError(
            f"The model '{request.model}' is served by Anthropic, which has no embeddings API.",
            param="model",
            code="unsupported_operation",
        )

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> bytes:
        return messages_request_body(
            request, model, default_max_tokens=self.default_max_tokens, stream=stream
        )

    def _error(self, status: int, headers: Mapping[str, str], data: bytes) -> UpstreamError:
        return error_from_response(self.name, status, headers, data, self.transport.redact)

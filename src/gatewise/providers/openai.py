"""Provider ``openai``: the OpenAI API, and the base of every OpenAI-shaped upstream.

Subclasses (``openai-compatible``, ``azure``) change only where requests go and
how they authenticate; the wire format handling lives here once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gatewise.config.providers import OpenAIProviderConfig
from gatewise.config.secrets import interpolate, resolve
from gatewise.core.errors import GatewayError, UpstreamProtocolError
from gatewise.core.types import (
    ChatRequest,
    ChatResponse,
    ChunkBatch,
    EmbeddingRequest,
    EmbeddingResponse,
    NativeBody,
)
from gatewise.formats import openai as wire
from gatewise.net.http1 import Response
from gatewise.net.proxy import resolver as proxy_resolver
from gatewise.providers.sse import SSEDecoder
from gatewise.providers.transport import HTTPTransport, Redactor


class OpenAIProvider:
    """Speaks OpenAI's API to ``base_url`` with ``Authorization: Bearer``."""

    kind = "openai"
    #: Requests that came in through the OpenAI front door are sent on as the client sent
    #: them (see ``Provider``), and replies keep their bytes for verbatim relay.
    wire = "openai"
    #: Whether the upstream can answer embeddings as base64 itself.
    embeddings_base64 = True
    #: Send ``max_tokens`` as ``max_completion_tokens`` (api.openai.com deprecated the
    #: former and rejects it for reasoning models; other servers may only know it).
    modern_max_tokens = True
    #: Drop stream events with neither choices nor usage (Azure's prompt-filter event),
    #: which OpenAI clients do not expect.
    skip_empty_chunks = False

    def __init__(self, name: str, base_url: str, transport: HTTPTransport) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.transport = transport

    @classmethod
    def from_config(cls, name: str, config: Any, base_dir: Path | None) -> OpenAIProvider:
        assert isinstance(config, OpenAIProviderConfig)
        key = resolve(config.api_key, base_dir)
        auth = {"authorization": f"Bearer {key.reveal()}"}
        scope = {}
        if config.organization:
            scope["openai-organization"] = config.organization
        if config.project:
            scope["openai-project"] = config.project
        return cls(name, config.base_url, build_transport(name, config, base_dir, auth, scope))

    # --- addressing: overridden by subclasses ---------------------------------

    def url(self, operation: str, model: str) -> str:
        """The URL of ``operation`` (``chat/completions``, ``embeddings``) for ``model``."""
        return f"{self.base_url}/{operation}"

    # --- the Provider protocol --------------------------------------------------

    async def start(self) -> None:
        await self.transport.start()

    async def close(self) -> None:
        await self.transport.close()

    def _chat_body(
        self, request: ChatRequest, model: str, native: NativeBody | None, *, stream: bool
    ) -> bytes:
        if native is not None:
            return wire.native_chat_body(
                native.data,
                model,
                force_stream_usage=stream,
                modern_max_tokens=self.modern_max_tokens,
            )
        return wire.chat_request_body(
            request, model, force_stream_usage=stream, modern_max_tokens=self.modern_max_tokens
        )

    async def chat(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> ChatResponse:
        body = self._chat_body(request, model, native, stream=False)
        data = await self._post("chat/completions", model, body)
        return wire.decode_chat_response(data)

    async def chat_stream(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> OpenAIChunkStream:
        body = self._chat_body(request, model, native, stream=True)
        transport = self.transport
        response = await transport.open_stream(
            self.url("chat/completions", model), body, transport.error_from_response
        )
        return OpenAIChunkStream(self.transport, response, self.skip_empty_chunks)

    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        wanted = request.encoding_format or "float"
        ask = wanted if self.embeddings_base64 else "float"
        body = wire.embedding_request_body(request, model, encoding_format=ask)
        data = await self._post("embeddings", model, body)
        response = wire.decode_embedding_response(data)
        return wire.embeddings_as(response, wanted) if ask != wanted else response

    async def _post(self, operation: str, model: str, body: bytes) -> bytes:
        transport = self.transport
        url = self.url(operation, model)
        return await transport.call(url, body, transport.error_from_response)


class OpenAIChunkStream:
    """Canonical chunks from an OpenAI-format SSE stream (``data: {...}`` ... ``data: [DONE]``)."""

    def __init__(self, transport: HTTPTransport, response: Response, skip_empty: bool) -> None:
        self._transport = transport
        self._response = response
        self._skip_empty = skip_empty

    def __aiter__(self) -> AsyncIterator[ChunkBatch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[ChunkBatch]:
        decoder = SSEDecoder()
        done = False
        try:
            # Read to the end of the HTTP message even after [DONE], so the
            # connection goes back to the pool instead of being closed.
            async for data in self._transport.iter_chunks(self._response):
                if done:
                    continue
                payloads = []
                for _event, payload in decoder.feed(data):
                    if payload.startswith(b"[DONE]"):
                        done = True
                        break
                    if payload.startswith(b'{"error"'):
                        raise self._stream_error(payload)
                    payloads.append(payload)
                if not payloads:
                    continue
                chunks = wire.decode_chat_chunks(payloads)
                if self._skip_empty:
                    kept = [i for i, c in enumerate(chunks) if c.choices or c.usage is not None]
                    chunks = [chunks[i] for i in kept]
                    payloads = [payloads[i] for i in kept]
                if chunks:
                    yield ChunkBatch(chunks, payloads)
        finally:
            self._response.close()  # a no-op when the body was read to its end
        if not done:
            raise UpstreamProtocolError("The upstream closed the stream before it was complete.")

    def _stream_error(self, payload: bytes) -> GatewayError:
        message, type_, code, _param = wire.upstream_error_fields(payload)
        return UpstreamProtocolError(
            self._transport.redact(message or "The upstream reported an error mid-stream."),
            type=type_ or "server_error",
            code=code,
        )

    async def aclose(self) -> None:
        self._response.close()


def build_transport(
    name: str,
    config: Any,
    base_dir: Path | None,
    auth_headers: dict[str, str],
    plain_headers: dict[str, str] | None = None,
) -> HTTPTransport:
    """A transport with the config's pool, timeouts and headers (secrets interpolated).

    Every value that came from a secret (the auth headers, interpolated extra
    headers) is registered with the redactor, so it never reaches a client.
    """
    headers = {k: interpolate(v, base_dir) for k, v in config.headers.items()}
    secrets = [v.split(" ", 1)[-1] for v in auth_headers.values()]
    secrets += [v for k, v in headers.items() if v != config.headers[k]]
    proxy_url = interpolate(config.proxy, base_dir) if config.proxy else None
    if proxy_url and proxy_url != config.proxy:
        secrets.append(proxy_url)
    return HTTPTransport(
        name,
        config.timeouts,
        config.max_connections,
        {**headers, **(plain_headers or {}), **auth_headers},
        Redactor(secrets),
        proxy=proxy_resolver(proxy_url, config.trust_env),
    )

"""Provider ``gemini``: Google's Gemini Developer API (``generativelanguage.googleapis.com``).

``POST {base_url}/models/{model}:generateContent`` (``:streamGenerateContent?alt=sse``
for streams, ``:batchEmbedContents`` for embeddings) with the ``x-goog-api-key``
header. The translation lives in ``gemini_request`` (canonical -> Gemini),
``gemini_response`` (Gemini -> canonical) and ``gemini_schema`` (tool schemas);
this module does the HTTP and maps Google's error envelope
(``{"error": {"code", "message", "status", "details"}}``) to ``GatewayError``.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
import orjson

from gatewise.config.providers import GeminiProviderConfig
from gatewise.config.secrets import resolve
from gatewise.core.errors import (
    GatewayError,
    InvalidRequestError,
    UpstreamError,
    UpstreamProtocolError,
)
from gatewise.core.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ChunkBatch,
    Embedding,
    EmbeddingRequest,
    EmbeddingResponse,
    NativeBody,
)
from gatewise.formats.gemini import BatchEmbedContentsResponse, model_path
from gatewise.formats.openai import floats_to_base64
from gatewise.net.http1 import Response
from gatewise.providers.gemini_request import chat_body
from gatewise.providers.gemini_response import StreamTranslator, chat_response, decode
from gatewise.providers.openai import build_transport
from gatewise.providers.sse import SSEDecoder
from gatewise.providers.transport import RELAYED_ERROR_HEADERS, HTTPTransport, openai_error_type

_embeddings_decoder = msgspec.json.Decoder(BatchEmbedContentsResponse)
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


class GeminiProvider:
    """Speaks the Gemini API to ``base_url`` (which includes the version, e.g. ``/v1beta``)."""

    kind = "gemini"

    def __init__(self, name: str, base_url: str, transport: HTTPTransport) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self._urls: dict[tuple[str, str], str] = {}

    @classmethod
    def from_config(cls, name: str, config: Any, base_dir: Path | None) -> GeminiProvider:
        assert isinstance(config, GeminiProviderConfig)
        key = resolve(config.api_key, base_dir).reveal()
        transport = build_transport(name, config, base_dir, {"x-goog-api-key": key})
        return cls(name, config.base_url, transport)

    def url(self, model: str, method: str) -> str:
        """``{base_url}/models/{model}:{method}`` (cached: models repeat)."""
        url = self._urls.get((model, method))
        if url is None:
            url = f"{self.base_url}/{quote(model_path(model), safe='/')}:{method}"
            self._urls[(model, method)] = url
        return url

    # --- the Provider protocol --------------------------------------------------------

    async def start(self) -> None:
        await self.transport.start()

    async def close(self) -> None:
        await self.transport.close()

    async def chat(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> ChatResponse:
        body = chat_body(request)
        data = await self.transport.call(self.url(model, "generateContent"), body, self.error)
        return chat_response(data, model, request.n or 1)

    async def chat_stream(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> GeminiChunkStream:
        body = chat_body(request)
        url = self.url(model, "streamGenerateContent?alt=sse")
        response = await self.transport.open_stream(url, body, self.error)
        translator = StreamTranslator(model, request.n or 1)
        return GeminiChunkStream(self, response, translator)

    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        texts = _embedding_texts(request.input)
        item: dict[str, Any] = {"model": model_path(model)}
        if request.dimensions is not None:
            item["outputDimensionality"] = request.dimensions
        task = request.extra.get("task_type", request.extra.get("taskType"))
        if isinstance(task, str):
            item["taskType"] = task
        body = orjson.dumps(
            {"requests": [{**item, "content": {"parts": [{"text": text}]}} for text in texts]}
        )
        data = await self.transport.call(self.url(model, "batchEmbedContents"), body, self.error)
        try:
            vectors = _embeddings_decoder.decode(data).embeddings
        except (msgspec.ValidationError, msgspec.DecodeError):
            vectors = []
        if len(vectors) != len(texts):
            raise UpstreamProtocolError(
                "The upstream returned a response that is not a valid embeddings batch."
            )
        as_base64 = request.encoding_format == "base64"
        items = [
            Embedding(index=i, embedding=floats_to_base64(v.values) if as_base64 else v.values)
            for i, v in enumerate(vectors)
        ]
        # Gemini reports no token counts for embeddings: the corridor counts them.
        return EmbeddingResponse(data=items, model=model, usage=None)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        """Google's error relayed with its status and message (credentials redacted).

        The code is the ErrorInfo reason or the google.rpc status, lower-cased
        (``api_key_invalid``, ``resource_exhausted`` ...). A 429 without
        ``retry-after`` gets one from the body's RetryInfo ``retryDelay``.
        """
        message, google_status, reason, retry_delay = error_fields(body)
        if not message:
            message = f"The upstream provider '{self.name}' answered HTTP {status}."
        relayed = {k: headers[k] for k in RELAYED_ERROR_HEADERS if k in headers}
        if status == 429 and "retry-after" not in relayed and retry_delay is not None:
            relayed["retry-after"] = str(max(1, math.ceil(retry_delay)))
        code = reason or google_status
        return UpstreamError(
            self.transport.redact(message)[:2000],
            status=status,
            type=openai_error_type(status),
            code=code.lower() if code else None,
            headers=relayed,
        )


class GeminiChunkStream:
    """Canonical chunks from Gemini's SSE stream (``data: {GenerateContentResponse}`` ...).

    Gemini sends no end marker: the stream is complete when the HTTP body ends after
    a finish reason (``StreamTranslator.finish`` checks it).
    """

    def __init__(
        self,
        provider: GeminiProvider,
        response: Response,
        translator: StreamTranslator,
    ) -> None:
        self._provider = provider
        self._response = response
        self._translator = translator

    def __aiter__(self) -> AsyncIterator[ChunkBatch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[ChunkBatch]:
        decoder = SSEDecoder()
        feed = self._translator.feed
        transport = self._provider.transport
        try:
            async for data in transport.iter_chunks(self._response):
                chunks: list[ChatChunk] = []
                for _event, payload in decoder.feed(data):
                    if b'"error"' in payload[:16]:
                        raise self._stream_error(payload)
                    chunks += feed(decode(payload))
                if chunks:
                    yield ChunkBatch(chunks)
        finally:
            self._response.close()  # a no-op when the body was read to its end
        if decoder.pending.strip():
            raise UpstreamProtocolError("The upstream closed the stream in the middle of an event.")
        final = self._translator.finish()
        if final:
            yield ChunkBatch(final)

    def _stream_error(self, payload: bytes) -> GatewayError:
        message, google_status, reason, _ = error_fields(payload)
        code = reason or google_status
        return UpstreamProtocolError(
            self._provider.transport.redact(
                message or "The upstream reported an error mid-stream."
            ),
            type="server_error",
            code=code.lower() if code else None,
        )

    async def aclose(self) -> None:
        self._response.close()


def error_fields(body: bytes) -> tuple[str | None, str | None, str | None, float | None]:
    """(message, status, ErrorInfo reason, RetryInfo delay in seconds) from Google's envelope.

    The envelope may come alone or, from the streaming endpoint, in a one-item array.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None, None, None
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None, None, None
    message = error.get("message")
    status = error.get("status")
    reason: str | None = None
    delay: float | None = None
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict):
            continue
        kind = detail.get("@type")
        if kind == _ERROR_INFO and isinstance(detail.get("reason"), str):
            reason = detail["reason"]
        elif kind == _RETRY_INFO and isinstance(detail.get("retryDelay"), str):
            match = _RETRY_DELAY.match(detail["retryDelay"])
            if match:
                delay = float(match.group(1))
    return (
        message if isinstance(message, str) and message else None,
        status if isinstance(status, str) else None,
        reason,
        delay,
    )


def _embedding_texts(value: str | list[Any]) -> list[str]:
    if isinstance(value, str):
        return [value]
    if all(isinstance(item, str) for item in value):
        return value
    raise InvalidRequestError(
        "Invalid 'input': the Gemini provider embeds text only; token-id input is not supported.",
        param="input",
    )

"""A provider plug-in as a third party would write it: tests install it as an entry point.

``echo`` answers every chat completion with its configured ``reply`` (``repeat``
times). Everything a plug-in defines is here, in one place: its config model,
its provider class and the ``ProviderType`` its entry point names
(``echo = tests.echo_plugin:PROVIDER_TYPE``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from gatewise.config.providers import ProviderBase
from gatewise.core.errors import InvalidRequestError
from gatewise.core.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkBatch,
    ChunkChoice,
    Delta,
    EmbeddingRequest,
    EmbeddingResponse,
    NativeBody,
    ResponseMessage,
    Usage,
)
from gatewise.providers.registry import ProviderType


class EchoConfig(ProviderBase):
    """The ``echo`` section: a fixed reply."""

    type: Literal["echo"]
    reply: str = Field(min_length=1)
    repeat: int = Field(1, ge=1, le=10)


class EchoProvider:
    kind = "echo"

    def __init__(self, name: str, config: EchoConfig, base_dir: Path | None) -> None:
        self.name = name
        self.text = " ".join([config.reply] * config.repeat)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def chat(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> ChatResponse:
        usage = Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2)
        choice = Choice(0, ResponseMessage(content=self.text), "stop")
        return ChatResponse(
            id="chatcmpl-echo", created=int(time.time()), model=model, choices=[choice], usage=usage
        )

    async def chat_stream(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> EchoStream:
        return EchoStream(self.text, model)

    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        raise InvalidRequestError("the echo provider has no embeddings")


class EchoStream:
    def __init__(self, text: str, model: str) -> None:
        self.text, self.model = text, model

    async def _batches(self) -> AsyncIterator[ChunkBatch]:
        def chunk(delta: Delta, finish: str | None = None) -> ChatChunk:
            choices = [ChunkChoice(0, delta, finish)]
            return ChatChunk(id="chatcmpl-echo", created=0, model=self.model, choices=choices)

        yield ChunkBatch([chunk(Delta(role="assistant", content=""))])
        yield ChunkBatch([chunk(Delta(content=self.text)), chunk(Delta(), "stop")])

    def __aiter__(self) -> AsyncIterator[ChunkBatch]:
        return self._batches()

    async def aclose(self) -> None:
        return None


PROVIDER_TYPE = ProviderType("echo", EchoConfig, EchoProvider)

NOT_A_PROVIDER_TYPE = {"name": "echo"}  # what a broken plug-in's entry point may name

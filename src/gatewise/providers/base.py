"""The ``Provider`` protocol: what the gateway asks of one configured upstream.

A provider translates canonical requests into one upstream's wire format, does
the HTTP, and translates the answer back. Adding a provider is adding one
module with a class implementing this protocol and one ``ProviderType`` in
``gatewise.providers.registry`` (third-party providers register through the
``gatewise.providers`` entry-point group; the registry's docstring has the contract).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from gatewise.core.types import (
    ChatRequest,
    ChatResponse,
    ChunkBatch,
    EmbeddingRequest,
    EmbeddingResponse,
    NativeBody,
)


class ChunkStream(Protocol):
    """An opened upstream stream: the status was checked, chunks are yet to come.

    Iterating yields batches of canonical chunks: the chunks that arrived
    together in one read, so the front door writes them to the client in one
    send (each send costs tens of microseconds). A failure mid-stream raises a
    ``GatewayError``. ``aclose`` releases the upstream connection early (client gone).
    """

    def __aiter__(self) -> AsyncIterator[ChunkBatch]: ...

    async def aclose(self) -> None: ...


class Provider(Protocol):
    """One configured upstream (an account on a provider, a self-hosted server ...).

    A provider translates and does the HTTP; it records nothing: dispatch times each
    call as an attempt and tells the observers. Failures raise ``GatewayError``s
    (``UpstreamError`` with the upstream's status, timeouts, protocol errors).

    A provider may declare the wire format it speaks natively in a ``wire`` attribute
    ("openai", "anthropic"); dispatch then hands it the client's own request
    (``native``) when the client came in through a front door of that format, and the
    provider should send that on (with its own model name) rather than re-encode the
    canonical request, and attach its raw reply (``attach_raw`` / ``ChunkBatch.raw``).
    """

    name: str
    #: A short description of the upstream for logs and telemetry ("openai", "azure" ...).
    kind: str

    async def start(self) -> None:
        """Open pools; called once per worker inside its event loop."""

    async def close(self) -> None:
        """Close pools; called on shutdown."""

    async def chat(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> ChatResponse: ...

    async def chat_stream(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> ChunkStream:
        """Send a streamed request and return once the upstream answered 200.

        Errors before the first byte raise (so the front door can answer with the
        upstream's status); errors after it surface while iterating.
        """
        ...

    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        """Embeddings; ``usage`` None when the upstream reports none (the corridor counts)."""
        ...

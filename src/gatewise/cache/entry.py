"""What the exact cache stores: a reply, a stream's batches, or embeddings, as msgpack.

An entry is written once from canonical objects and read back as new objects on
every hit (steps after the cache may change a reply in place; a stored entry must
not change with it). A stream is kept batch by batch, each batch encoded as it
passes (``encode_batch``), with its time since the request began, so a hit can
replay it as it first came (``cache.replay``). msgspec's msgpack decodes a small
reply in a few microseconds.
"""

from __future__ import annotations

import msgspec

from gatewise.core.types import ChatChunk, ChatResponse, EmbeddingResponse

REPLY, STREAM, EMBEDDINGS = 0, 1, 2


class Entry(msgspec.Struct, array_like=True, gc=False):
    kind: int
    reply: ChatResponse | None = None
    embeddings: EmbeddingResponse | None = None
    batches: list[list[ChatChunk]] = msgspec.field(default_factory=list)
    #: Seconds from the request's start to each batch (``keep_pacing``).
    offsets: list[float] = msgspec.field(default_factory=list)


class _Written(msgspec.Struct, array_like=True, gc=False):
    """``Entry`` as it is written: a stream's batches already encoded."""

    kind: int
    reply: ChatResponse | None
    embeddings: EmbeddingResponse | None
    batches: list[msgspec.Raw]
    offsets: list[float]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)


def encode_reply(reply: ChatResponse) -> bytes:
    return _encoder.encode(_Written(REPLY, reply, None, [], []))


def encode_embeddings(response: EmbeddingResponse) -> bytes:
    return _encoder.encode(_Written(EMBEDDINGS, None, response, [], []))


def encode_batch(chunks: list[ChatChunk]) -> msgspec.Raw:
    """One stream batch, encoded as it passes (before later steps see the chunks)."""
    return msgspec.Raw(_encoder.encode(chunks))


def encode_stream(batches: list[msgspec.Raw], offsets: list[float]) -> bytes:
    return _encoder.encode(_Written(STREAM, None, None, batches, offsets))


def decode(data: bytes) -> Entry | None:
    """The entry in ``data``; None when it is not one (written by another version)."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None

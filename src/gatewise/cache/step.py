"""The exact cache's corridor step: answer a call from an earlier identical one, or keep
this call's reply for the next.

It stands after the input guardrails (a blocked request is never looked up; a
request they rewrote is looked up as rewritten) and before the router. ``before``
looks the call up under its key (``cache.keys``): a hit answers the call (the
steps before this one, output guardrails included, still see the answer on its
way back), a miss notes the key. On the way back this step is the first to see
the upstream's reply: ``after`` keeps a complete reply, ``on_chunks`` encodes
each stream batch as it passes and ``on_stream_end`` keeps the stream once it
ended normally. Errors, refusals of a step, cut or abandoned streams and replies
without a finish reason are never kept.

What the call was is recorded on the context: ``ctx.cache`` is ``hit``, ``miss``
or ``bypass`` (the ``x-gatewise-cache`` response header, the request records,
logs and metrics read it); a hit called no upstream, so it costs 0 and settles
at zero tokens against limits and budgets (``policies.admission``).

A client skips the lookup with ``cache-control: no-cache`` or ``x-gatewise-cache:
bypass`` (the fresh reply replaces the entry), and with ``cache-control:
no-store`` also keeps its reply out of the cache.
"""

from __future__ import annotations

import time

import msgspec

from gatewise.cache.entry import (
    EMBEDDINGS,
    REPLY,
    STREAM,
    decode,
    encode_batch,
    encode_embeddings,
    encode_reply,
    encode_stream,
)
from gatewise.cache.keys import deterministic, request_key, scope_of
from gatewise.cache.replay import StoredStream, assemble
from gatewise.cache.store import CacheStore
from gatewise.config.cache import CacheConfig
from gatewise.core.types import ChatChunk, ChatRequest, ChatResponse, EmbeddingResponse
from gatewise.corridor.call import Call
from gatewise.corridor.replay import stream_as
from gatewise.corridor.step import Reply, Step

#: ``call.notes[step]`` of a call the cache answered.
_HIT = object()
_perf_counter = time.perf_counter


class _Keeping:
    """A call whose reply the cache will keep: its key and, for a stream, what passed."""

    __slots__ = ("batches", "finished", "key", "offsets", "size", "ttl")

    def __init__(self, key: str, ttl: int) -> None:
        self.key = key
        self.ttl = ttl
        self.batches: list[msgspec.Raw] | None = []  # None: too large, not kept
        self.offsets: list[float] = []
        self.size = 0
        self.finished = False


class CacheStep(Step):
    name = "cache"

    def __init__(self, settings: CacheConfig, store: CacheStore) -> None:
        self.settings = settings
        self.store = store
        self._synchronous = store.synchronous
        self._shared = settings.scope == "shared"
        self._max_entry = settings.max_entry_bytes
        self._pacing = settings.keep_pacing
        self._rules: dict[str, tuple[bool, int, bool]] = {}

    def _rule(self, model: str) -> tuple[bool, int, bool]:
        rule = self._rules.get(model)
        if rule is None:  # (public model names: as many as the catalog has)
            rule = self._rules[model] = self.settings.rule(model)
        return rule

    async def before(self, call: Call) -> Reply | None:
        enabled, ttl, deterministic_only = self._rule(call.model)
        if not enabled:
            return None
        request = call.request
        if deterministic_only and not deterministic(request):
            return None
        ctx = call.ctx
        principal = call.principal
        if principal is None:
            scope = scope_of(None, None, self._shared)
        else:
            scope = scope_of(principal.tenant_id, principal.owner, self._shared)
        key = request_key(scope, call.model, request)
        headers = ctx.headers
        control = headers.get(b"cache-control")
        asked = headers.get(b"x-gatewise-cache")
        if control is not None or asked is not None:
            control = (control or b"").lower()
            if b"no-store" in control:
                ctx.cache = "bypass"
                return None
            if b"no-cache" in control or (asked is not None and asked.lower() == b"bypass"):
                ctx.cache = "bypass"
                call.notes[self] = _Keeping(key, ttl)
                return None
        store = self.store
        data = store.get_now(key) if self._synchronous else await store.get(key)
        if data is not None:
            reply = self._answer(call, data)
            if reply is not None:
                ctx.cache = "hit"
                call.notes[self] = _HIT
                return reply
        ctx.cache = "miss"
        call.notes[self] = _Keeping(key, ttl)
        return None

    def _answer(self, call: Call, data: bytes) -> Reply | None:
        """The stored answer in the shape the call needs (None: no usable entry)."""
        entry = decode(data)
        if entry is None:
            return None
        request = call.request
        if not isinstance(request, ChatRequest):
            return entry.embeddings if entry.kind == EMBEDDINGS else None
        if entry.kind == REPLY:
            return entry.reply  # (a streamed call gets it as one batch)
        if entry.kind != STREAM:
            return None
        if not request.stream:
            return assemble(entry.batches)
        offsets = entry.offsets if self._pacing else None
        return stream_as(
            ChatResponse(choices=[]), StoredStream(entry.batches, offsets, call.ctx.started)
        )

    def watches(self, call: Call) -> bool:
        return type(call.notes.get(self)) is _Keeping

    async def after(self, call: Call, reply: Reply) -> Reply:
        keeping = call.notes.get(self)
        if type(keeping) is _Keeping:
            if isinstance(reply, ChatResponse):
                if reply.choices and all(c.finish_reason for c in reply.choices):
                    self._keep(keeping, encode_reply(reply))
            elif isinstance(reply, EmbeddingResponse) and reply.data:
                self._keep(keeping, encode_embeddings(reply))
        return reply

    async def on_chunks(self, call: Call, chunks: list[ChatChunk]) -> list[ChatChunk]:
        keeping = call.notes.get(self)
        if type(keeping) is _Keeping and keeping.batches is not None:
            batch = encode_batch(chunks)
            keeping.size += len(batch)
            if keeping.size > self._max_entry:
                keeping.batches = None  # too large to keep: stop encoding
                return chunks
            keeping.batches.append(batch)
            keeping.offsets.append(_perf_counter() - call.ctx.started)
            if not keeping.finished:
                keeping.finished = any(
                    choice.finish_reason for chunk in chunks for choice in chunk.choices
                )
        return chunks

    async def on_stream_end(self, call: Call) -> list[ChatChunk]:
        keeping = call.notes.get(self)
        if type(keeping) is _Keeping and keeping.batches and keeping.finished:
            self._keep(keeping, encode_stream(keeping.batches, keeping.offsets))
        return []

    def finish(self, call: Call) -> None:
        if call.notes.pop(self, None) is _HIT:
            call.ctx.cost_micros = 0  # no upstream was called

    def _keep(self, keeping: _Keeping, data: bytes) -> None:
        if len(data) <= self._max_entry:
            self.store.put(keeping.key, data, keeping.ttl)

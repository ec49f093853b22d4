"""The semantic cache's room in the corridor, right after the exact cache.

``before``: embed the question (system prompts + last user message, ``semantic.key_text``)
on the encoder's thread, search the caller's partition, check the nearest question's
words (``semantic_guard.py``; a refusal is noted as ``semantic_cache:refused:<score>``
in ``ctx.decisions`` and the call goes on as a miss); a hit answers the call with
the stored reply (``ctx.cache = "semantic_hit"``, cost 0, no upstream attempt; a
streamed call gets it played back as one batch). A miss keeps the question's vector
in ``call.notes`` and the step watches the reply: a complete one (every choice
finished with ``stop``, no tool calls) is stored; so is a stream that ended that
way, assembled from its content deltas as they pass (nothing is held back).

The cache never fails a call: an embedding or Redis error is logged once and the
call goes on as a miss. ``cache-control: no-cache`` skips the lookup and
``no-store`` the storing, as in HTTP.
"""

from __future__ import annotations

import logging
from typing import Any

from gatewise.cache.semantic import Partition, Question, SemanticCache, join, key_parts
from gatewise.core.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ResponseMessage,
    Usage,
)
from gatewise.corridor.call import Call
from gatewise.corridor.step import Reply, Step

log = logging.getLogger("gatewise")


class _Pending:
    """A missed call's question, and the stream's reply as it passes."""

    __slots__ = (
        "dead", "finish", "model", "partition", "parts", "reply_id", "text", "usage", "vector",
    )  # fmt: skip

    def __init__(self, partition: Partition, vector: Any, text: Question) -> None:
        self.partition = partition
        self.vector = vector
        self.text = text
        self.parts: list[str] = []
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.reply_id = ""
        self.model = ""
        self.dead = False


class SemanticCacheStep(Step):
    name = "semantic_cache"

    def __init__(self, cache: SemanticCache) -> None:
        self.cache = cache
        self._failing = False

    async def before(self, call: Call) -> Reply | None:
        request = call.request
        if not isinstance(request, ChatRequest) or not self.cache.caches(call.model):
            return None
        settings = self.cache.settings
        question = key_parts(
            request, single_turn=settings.single_turn, max_chars=settings.max_chars
        )
        if question is None:
            return None
        control = call.ctx.headers.get(b"cache-control", b"")
        principal = call.principal
        partition = self.cache.partition(
            principal.tenant_id if principal is not None else None, call.model
        )
        try:
            vector = await self.cache.embed(join(question))
            found = (
                None
                if b"no-cache" in control
                else await self.cache.lookup(partition, vector, question)
            )
        except Exception as exc:  # the cache must never fail a call
            self._failed(exc)
            return None
        ctx = call.ctx
        if found is not None:
            reply, score = found
            if reply is not None:
                ctx.cache = "semantic_hit"
                ctx.cost_micros = 0
                ctx.decisions.append(f"semantic_cache:{score:.3f}")
                return reply
            ctx.decisions.append(f"semantic_cache:refused:{score:.3f}")  # the lexical guard
        if ctx.cache is None:
            ctx.cache = "miss"
        if b"no-store" not in control:
            call.notes[self] = _Pending(partition, vector, question)
        return None

    def watches(self, call: Call) -> bool:
        return self in call.notes

    async def after(self, call: Call, reply: Reply) -> Reply:
        pending = call.notes.pop(self, None)
        if pending is not None and isinstance(reply, ChatResponse) and _complete(reply):
            self._store(pending, reply)
        return reply

    async def on_chunks(self, call: Call, chunks: list[ChatChunk]) -> list[ChatChunk]:
        pending: _Pending | None = call.notes.get(self)
        if pending is None or pending.dead:
            return chunks
        for chunk in chunks:
            if chunk.usage is not None:
                pending.usage = chunk.usage
            if not pending.reply_id:
                pending.reply_id, pending.model = chunk.id, chunk.model
            for choice in chunk.choices:
                delta = choice.delta
                if choice.index != 0 or delta.tool_calls or delta.refusal:
                    pending.dead = True  # several choices, tool calls: not cached
                    return chunks
                if delta.content:
                    pending.parts.append(delta.content)
                if choice.finish_reason:
                    pending.finish = choice.finish_reason
        return chunks

    async def on_stream_end(self, call: Call) -> list[ChatChunk]:
        pending: _Pending | None = call.notes.pop(self, None)
        if pending is None or pending.dead or pending.finish != "stop" or not pending.parts:
            return []
        reply = ChatResponse(
            id=pending.reply_id,
            model=pending.model,
            choices=[Choice(0, ResponseMessage(content="".join(pending.parts)), "stop")],
            usage=pending.usage,
        )
        self._store(pending, reply)
        return []

    def _store(self, pending: _Pending, reply: ChatResponse) -> None:
        try:
            self.cache.store(pending.partition, pending.vector, reply, pending.text)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.warning("semantic cache failed (%s); calls go on uncached", exc, exc_info=exc)


def _complete(reply: ChatResponse) -> bool:
    """A reply worth answering others with: every choice finished normally with text."""
    return bool(reply.choices) and all(
        choice.finish_reason == "stop" and choice.message.content and not choice.message.tool_calls
        for choice in reply.choices
    )

"""The semantic cache: a paraphrase of a question asked before gets the reply it got.

What is compared: the system prompt(s) and the last user message, joined, embedded
(``embedder.py``) and searched by cosine in the index (``semantic_index.py``). What
must match exactly: the partition, which is the caller's tenant (or ``*`` with
``scope: shared``) and the public model name. Nothing else of the request is in
the key (sampling settings, earlier turns), which is why ``single_turn`` is on by
default and calls with tools or a response format are never cached.

A candidate hit is then checked word by word (``semantic_guard.py``): numbers,
negation and, for a near copy, every content word must agree, so "reset my
colleague's password" is not answered with "reset my password"'s reply. Each index
row's payload is ``(signature of the stored question, reply or entry id)``.

Replies are kept as encoded JSON bytes (a hit decodes a fresh object, so nothing a
front door does to one reply reaches the next). With ``backend: redis`` the bytes
live in Redis and each worker's index holds the entry's id (``semantic_shared.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import msgspec

from gatewise.cache.embedder import Embedder
from gatewise.cache.semantic_guard import COPY, REFUSED, compare, signature
from gatewise.cache.semantic_index import SemanticIndex
from gatewise.config.semantic_cache import SemanticCacheConfig
from gatewise.core.types import ChatRequest, ChatResponse

log = logging.getLogger("gatewise")

#: The partition of ``scope: shared`` (tenant ids never contain ``*``).
SHARED = "*"

Partition = tuple[str, str]
#: A question as the guard sees it: (system prompts joined, last user message).
Question = tuple[str, str]


def key_text(request: ChatRequest, *, single_turn: bool, max_chars: int) -> str | None:
    """What is embedded for ``request``: its system prompts and its last user message
    (None: the call is not one the semantic cache answers)."""
    parts = key_parts(request, single_turn=single_turn, max_chars=max_chars)
    return None if parts is None else join(parts)


def join(parts: Question) -> str:
    system, user = parts
    return f"{system}\n{user}" if system else user


def key_parts(request: ChatRequest, *, single_turn: bool, max_chars: int) -> Question | None:
    """``(system prompts, last user message)`` of ``request``: embedded joined, checked
    apart by the guard (the system prompts must be the same, the question agree)."""
    if request.tools or request.response_format or request.tool_choice or (request.n or 1) != 1:
        return None
    system: list[str] = []
    last_user: str | None = None
    users = 0
    for message in request.messages:
        role = message.role
        text = _text(message.content)
        if text is None:
            return None  # images, audio: not something a text embedding can match
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            users += 1
            last_user = text
        elif single_turn:
            return None  # an assistant or tool turn: a conversation, not a question
    if last_user is None or (single_turn and users != 1):
        return None
    parts = ("\n".join(system), last_user)
    if not last_user.strip() or len(join(parts)) > max_chars:
        return None
    return parts


def _text(content: Any) -> str | None:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            return None
        parts.append(part["text"])
    return "\n".join(parts)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ChatResponse).decode


class SharedEntries(Protocol):
    """Where replies live in shared mode (``semantic_shared.RedisEntries`` is one)."""

    def publish(
        self, partition: Partition, vector: Any, reply: bytes, ttl_s: float, text: Question | None
    ) -> None: ...

    async def fetch(self, entry: str) -> bytes | None: ...

    def start(self) -> None: ...

    async def close(self) -> None: ...


class SemanticCache:
    """Embeds questions, finds the nearest earlier one and keeps new replies."""

    def __init__(
        self,
        settings: SemanticCacheConfig,
        embedder: Embedder,
        *,
        shared: SharedEntries | None = None,
        dimensions: int = 384,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.index: SemanticIndex[Any] = SemanticIndex(
            dimensions,
            max_entries=settings.max_entries,
            max_per_partition=settings.max_entries_per_partition,
        )
        self.shared = shared
        self._models = None if settings.models is None else frozenset(settings.models)
        # One thread: the encoder already uses both cores for one text; queueing here
        # keeps a burst of lookups from oversubscribing them.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gatewise-embed")
        self._started = False

    def caches(self, model: str) -> bool:
        return self._models is None or model in self._models

    def partition(self, tenant: str | None, model: str) -> Partition:
        if self.settings.scope == "shared":
            return (SHARED, model)
        return (tenant or "", model)

    async def embed(self, text: str) -> Any:
        if self.embedder.local:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, self.embedder.embed_sync, text)
        return await self.embedder.embed(text)

    async def lookup(
        self, partition: Partition, vector: Any, text: Question | None = None
    ) -> tuple[ChatResponse | None, float] | None:
        """The stored reply of the nearest question, with its similarity, when it passes
        the model's threshold and (``text`` given, ``guard`` on) the lexical guard.
        None: no candidate; ``(None, score)``: the guard refused the nearest one."""
        if not self._started:
            self.start()  # on the worker's loop, at its first call
        settings = self.settings
        model = partition[1]
        threshold = settings.threshold_for(model)
        guarded = settings.guard and text is not None
        floor = settings.copy_threshold_for(model) if guarded else threshold
        found = self.index.search(partition, vector, floor, time.monotonic())
        if found is None:
            return None
        (stored, payload), score = found
        if guarded and text is not None and stored is not None:
            kind = compare(signature(text[1], text[0]), stored)
            if kind == REFUSED:
                return None, score
            if kind != COPY and score < threshold:
                return None
        elif score < threshold:
            return None
        if self.shared is not None:
            payload = await self.shared.fetch(payload)
            if payload is None:  # expired or evicted in Redis before this worker knew
                return None
        return _decode(payload), score

    def store(
        self,
        partition: Partition,
        vector: Any,
        reply: ChatResponse,
        text: Question | None = None,
    ) -> None:
        """Keep ``reply`` for questions near ``vector`` (no await: the shared mode's
        write goes on in the background). ``text``: the question, for the guard."""
        data = _encode(reply)
        ttl = self.settings.ttl_s
        if self.shared is not None:
            self.shared.publish(partition, vector, data, ttl, text)
            return
        now = time.monotonic()
        stored = signature(text[1], text[0]) if text is not None and self.settings.guard else None
        self.index.add(partition, vector, (stored, data), now + ttl, now)

    def start(self) -> None:
        self._started = True
        if self.shared is not None:
            self.shared.start()

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()
        self._pool.shutdown(wait=False)

"""Test doubles for the corridor: a scripted provider, steps and observers that record, a clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from gatewise.core.context import Attempt, RequestContext
from gatewise.core.errors import GatewayError
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
    Message,
    ModelCard,
    NativeBody,
    ResponseMessage,
    Usage,
)
from gatewise.corridor.call import Call
from gatewise.corridor.observer import Observer
from gatewise.corridor.step import Reply, Step
from gatewise.routing.catalog import ModelCatalog, Route, Target

USAGE = Usage(prompt_tokens=11, completion_tokens=4, total_tokens=15)


class Clock:
    """A clock that moves only when told (``advance``) or by ``tick`` per reading."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now = 100.0
        self.tick = tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def reply(text: str = "four words of reply", usage: Usage | None = USAGE) -> ChatResponse:
    choice = Choice(0, ResponseMessage(content=text), "stop")
    return ChatResponse(id="x", created=1, model="m", choices=[choice], usage=usage)


@dataclass
class ScriptedProvider:
    """Answers each call with the next outcome: a reply, or an error to raise.

    Records what it was called with (model, native body) in ``calls``.
    """

    name: str
    outcomes: list[ChatResponse | GatewayError] = field(default_factory=list)
    wire: str | None = None
    kind: str = "scripted"
    usage: Usage | None = USAGE
    stream_error: GatewayError | None = None  # raised after the first batch of a stream
    ping: bool = False  # streams send a batch without chunks (an Anthropic ping) first
    calls: list[tuple[str, NativeBody | None]] = field(default_factory=list)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _next(self, model: str, native: NativeBody | None) -> ChatResponse:
        self.calls.append((model, native))
        outcome = self.outcomes.pop(0) if self.outcomes else reply(usage=self.usage)
        if isinstance(outcome, GatewayError):
            raise outcome
        return outcome

    async def chat(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> ChatResponse:
        return self._next(model, native)

    async def chat_stream(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> Stream:
        self._next(model, native)
        return Stream(self.usage, self.stream_error, self.ping)

    async def embed(self, request: EmbeddingRequest, model: str) -> EmbeddingResponse:
        self.calls.append((model, None))
        return EmbeddingResponse(data=[], model=model)


class Stream:
    """Three text chunks, then a usage chunk (unless ``usage`` is None)."""

    def __init__(
        self, usage: Usage | None, error: GatewayError | None = None, ping: bool = False
    ) -> None:
        self.usage = usage
        self.error = error
        self.ping = ping
        self.closed = False

    def __aiter__(self) -> AsyncIterator[ChunkBatch]:
        return self._batches()

    async def _batches(self) -> AsyncIterator[ChunkBatch]:
        if self.ping:
            yield ChunkBatch([], [b"event: ping\ndata: {}\n\n"], "anthropic")
        for text in ("four ", "words ", "of reply"):
            yield ChunkBatch([ChatChunk(choices=[ChunkChoice(0, Delta(content=text))])])
            if self.error is not None:
                raise self.error
        if self.usage is not None:
            yield ChunkBatch([ChatChunk(choices=[], usage=self.usage)])

    async def aclose(self) -> None:
        self.closed = True


def catalog(*providers: ScriptedProvider, name: str = "m") -> ModelCatalog:
    targets = tuple(Target.plain(provider, f"{provider.name}-model") for provider in providers)  # type: ignore[arg-type]
    return ModelCatalog([Route(name, targets, ModelCard(id=name, created=0, owned_by="t"))])


def chat_request(model: str = "m", *, stream: bool = False) -> ChatRequest:
    request = ChatRequest(model=model, messages=[Message(role="user", content="How many?")])
    if stream:
        request.stream = True
    return request


def context() -> RequestContext:
    return RequestContext(request_id="req_test")


class Journal:
    """Where recording steps and observers write what happened, in order."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def __call__(self, entry: str) -> None:
        self.entries.append(entry)


class Before(Step):
    def __init__(self, name: str, journal: Journal, answer: Reply | None = None) -> None:
        self.name = name
        self.journal = journal
        self.answer = answer

    async def before(self, call: Call) -> Reply | None:
        self.journal(f"before:{self.name}")
        return self.answer


class Finishing(Step):
    def __init__(self, name: str, journal: Journal) -> None:
        self.name = name
        self.journal = journal

    async def before(self, call: Call) -> Reply | None:
        self.journal(f"before:{self.name}")
        return None

    def finish(self, call: Call) -> None:
        self.journal(f"finish:{self.name}")


class After(Step):
    """Rewrites replies and stream chunks (upper case), so it may change output."""

    def __init__(self, name: str, journal: Journal) -> None:
        self.name = name
        self.journal = journal

    async def after(self, call: Call, reply: Reply) -> Reply:
        self.journal(f"after:{self.name}")
        if isinstance(reply, ChatResponse):
            for choice in reply.choices:
                choice.message.content = (choice.message.content or "").upper()
        return reply

    async def on_chunks(self, call: Call, chunks: list[ChatChunk]) -> list[ChatChunk]:
        self.journal(f"chunks:{self.name}:{len(chunks)}")
        for chunk in chunks:
            for choice in chunk.choices:
                if choice.delta.content:
                    choice.delta.content = choice.delta.content.upper()
        return chunks

    async def on_stream_end(self, call: Call) -> list[ChatChunk]:
        self.journal(f"end:{self.name}")
        return [ChatChunk(choices=[ChunkChoice(0, Delta(content="!"))])]


class Rewriting(Step):
    async def rewrite_request(self, call: Call) -> None:
        request = call.request
        assert isinstance(request, ChatRequest)  # replaced, never changed in place
        messages = [*request.messages, Message(role="system", content="added")]
        call.request = msgspec.structs.replace(request, messages=messages)


class AttemptWatcher(Step):
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def before_attempt(self, call: Call, target: Target) -> None:
        self.journal(f"attempt:{target.model}")


class Recorder(Observer):
    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.finished_contexts: list[RequestContext] = []

    def attempted(self, ctx: RequestContext, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    def finished(self, ctx: RequestContext) -> None:
        self.finished_contexts.append(ctx)


def principal() -> Any:
    from gatewise.identity.principal import Principal
    from gatewise.identity.roles import Role

    return Principal(
        "key", "key:k1", Role.CONSUMER, "app_1", tenant_id="t1", app_id="app_1", key_id="k1"
    )

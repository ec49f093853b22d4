"""What request records keep of prompts and replies: a step, for tenants that want bodies.

Only in the corridor when some tenant's privacy mode is not ``off``
(``RecordsConfig.keeps_bodies``). For a caller whose tenant keeps bodies it
puts the mode on the context with the request's texts (each message's text
after its role), and the reply's text once it is complete (a stream's
deltas, joined when the call ends). For every other caller it does nothing
but look the mode up, and says it will not watch the reply, so raw relay
stays on for it. Redaction happens later, in the writer's thread
(``observe.records.prepare``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gatewise.config.records import RecordsConfig
from gatewise.core.types import ChatChunk, ChatRequest, ChatResponse, EmbeddingRequest
from gatewise.corridor.call import Call
from gatewise.corridor.step import Reply, Step

if TYPE_CHECKING:
    from gatewise.core.context import Caller
    from gatewise.identity.directory import Directory

#: The privacy mode of a caller: "off", "redacted" or "full".
PrivacyOf = Callable[["Caller | None"], str]


def privacy_of(config: RecordsConfig, directory: Callable[[], Directory | None]) -> PrivacyOf:
    """The privacy mode of a caller, by its tenant's name (``observability.records``)."""
    default = config.privacy
    if not config.tenants:
        return lambda caller: default

    def mode(caller: Caller | None) -> str:
        tenant_id = None if caller is None else caller.tenant_id
        if tenant_id is None:
            return default
        found = directory()
        tenant = None if found is None else found.tenants_by_id.get(tenant_id)
        return config.privacy_of(tenant.name if tenant is not None else None)

    return mode


def request_text(request: ChatRequest | EmbeddingRequest) -> str:
    """The request's texts: ``role: text`` per message (embeddings: the inputs)."""
    if isinstance(request, EmbeddingRequest):
        value = request.input
        if isinstance(value, str):
            return value
        return "\n".join(item for item in value if isinstance(item, str))
    lines: list[str] = []
    for message in request.messages:
        text = message.text()
        if message.tool_calls:
            text += "".join(
                f"\n[tool call {call.function.name}: {call.function.arguments}]"
                for call in message.tool_calls
            )
        lines.append(f"{message.role}: {text}")
    return "\n".join(lines)


def reply_text(reply: Reply) -> str | None:
    if not isinstance(reply, ChatResponse):
        return None  # embeddings: vectors, not text
    texts = [choice.message.content or choice.message.refusal or "" for choice in reply.choices]
    return "\n".join(texts)


class RecordBodies(Step):
    name = "record_bodies"

    def __init__(self, privacy: PrivacyOf) -> None:
        self._privacy = privacy

    async def before(self, call: Call) -> Reply | None:
        mode = self._privacy(call.principal)
        if mode != "off":
            ctx = call.ctx
            ctx.privacy = mode
            ctx.request_text = request_text(call.request)
        return None

    def watches(self, call: Call) -> bool:
        return call.ctx.privacy is not None

    async def after(self, call: Call, reply: Reply) -> Reply:
        if call.ctx.privacy is not None:
            call.ctx.reply_text = reply_text(reply)
        return reply

    async def on_chunks(self, call: Call, chunks: list[ChatChunk]) -> list[ChatChunk]:
        if call.ctx.privacy is not None:
            parts: list[str] | None = call.notes.get(self)
            if parts is None:
                parts = call.notes[self] = []
            for chunk in chunks:
                for choice in chunk.choices:
                    content = choice.delta.content
                    if content:
                        parts.append(content)
        return chunks

    def finish(self, call: Call) -> None:
        parts: list[str] | None = call.notes.pop(self, None)
        if parts is not None:
            call.ctx.reply_text = "".join(parts)

"""The texts of a request, each with its author, and how to write them back.

Input guardrails read every text a model will see: each message's content (text
parts of multi-part content), the arguments of tool calls in the history, tool
results (where indirect injection arrives) and embeddings inputs. A ``Slot``
points at one of them; ``rewrite`` builds a new request with some slots changed,
leaving the front door's own objects untouched (the Responses front door stores
what the client sent, not what the model was shown).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from gatewise.core.types import ChatRequest, EmbeddingRequest, FunctionCall, Message, ToolCall
from gatewise.guardrails.base import TextRole

_ROLES: dict[str, TextRole] = {
    "system": "system",
    "developer": "developer",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}


@dataclass(frozen=True, slots=True)
class Slot:
    """One text: message ``index`` (or embeddings input ``index``), and where in it:
    ``part`` -1 for string content, a content part's position, or ``-2 - k`` for the
    arguments of the message's tool call ``k``."""

    index: int
    part: int
    role: TextRole
    text: str

    @property
    def is_json(self) -> bool:
        """Tool-call arguments: a JSON document (values written into it are escaped)."""
        return self.part <= -2


def request_slots(request: ChatRequest | EmbeddingRequest) -> list[Slot]:
    if isinstance(request, EmbeddingRequest):
        value = request.input
        if isinstance(value, str):
            return [Slot(0, -1, "user", value)]
        return [Slot(i, -1, "user", item) for i, item in enumerate(value) if isinstance(item, str)]
    slots: list[Slot] = []
    for index, message in enumerate(request.messages):
        role = _ROLES.get(message.role, "user")
        content = message.content
        if isinstance(content, str):
            if content:
                slots.append(Slot(index, -1, role, content))
        elif content:
            for part_index, part in enumerate(content):
                text = part.get("text") if part.get("type") in ("text", "input_text") else None
                if isinstance(text, str) and text:
                    slots.append(Slot(index, part_index, role, text))
        if message.tool_calls:
            for k, call in enumerate(message.tool_calls):
                arguments = call.function.arguments
                if arguments:
                    slots.append(Slot(index, -2 - k, role, arguments))
    return slots


def rewrite(
    request: ChatRequest | EmbeddingRequest, changes: dict[tuple[int, int], str]
) -> ChatRequest | EmbeddingRequest:
    """A copy of ``request`` where each (index, part) in ``changes`` has the new text."""
    if not changes:
        return request
    if isinstance(request, EmbeddingRequest):
        value = request.input
        if isinstance(value, str):
            return msgspec.structs.replace(request, input=changes.get((0, -1), value))
        items = [
            changes.get((i, -1), item) if isinstance(item, str) else item
            for i, item in enumerate(value)
        ]
        return msgspec.structs.replace(request, input=items)
    messages = list(request.messages)
    touched = sorted({index for index, _part in changes})
    for index in touched:
        messages[index] = _rewrite_message(messages[index], index, changes)
    return msgspec.structs.replace(request, messages=messages)


def _rewrite_message(message: Message, index: int, changes: dict[tuple[int, int], str]) -> Message:
    content = message.content
    if isinstance(content, str) and (index, -1) in changes:
        content = changes[(index, -1)]
    elif isinstance(content, list):
        content = [
            {**part, "text": changes[(index, i)]} if (index, i) in changes else part
            for i, part in enumerate(content)
        ]
    tool_calls = message.tool_calls
    if tool_calls:
        tool_calls = [
            ToolCall(
                id=call.id,
                type=call.type,
                function=FunctionCall(call.function.name, changes[(index, -2 - k)]),
            )
            if (index, -2 - k) in changes
            else call
            for k, call in enumerate(tool_calls)
        ]
    return msgspec.structs.replace(message, content=content, tool_calls=tool_calls)


def add_to_system_prompt(request: ChatRequest, line: str) -> ChatRequest:
    """A copy of ``request`` whose system prompt ends with ``line`` (one is added first
    when the request has none)."""
    messages = list(request.messages)
    if messages and messages[0].role in ("system", "developer"):
        first = messages[0]
        content = first.content
        if isinstance(content, list):
            content = [*content, {"type": "text", "text": line}]
        else:
            content = f"{content}\n\n{line}" if content else line
        messages[0] = msgspec.structs.replace(first, content=content)
    else:
        messages.insert(0, Message(role="system", content=line))
    return msgspec.structs.replace(request, messages=messages)

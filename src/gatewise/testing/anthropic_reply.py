"""What the fake Anthropic "model" answers: deterministic and predictable by tests.

- Text: ``"Echo: " + <last user text>`` (markers stripped, truncated), or
  ``"Tool result: ..."`` after tool results, or a JSON document satisfying
  ``output_config.format``'s schema; ``stop_sequences`` and ``max_tokens`` are
  applied on words (``stop_reason`` ``stop_sequence`` / ``max_tokens``).
- Tools: when tools are offered (and ``tool_choice`` is not ``none``, and the
  last turn is not tool results) the answer is ``tool_use`` instead: the forced
  tool, else every offered tool the last user text names (in offer order; only
  the first with ``disable_parallel_tool_use``), else the first tool. Inputs are
  sampled from each ``input_schema``.
- Thinking: with ``thinking: {"type": "enabled"}`` a thinking block comes first, signed
  with ``thinking_signature`` of its text (the checks accept only signatures the fake
  issued). The ``redacted_thinking`` scenario adds a ``redacted_thinking`` block (data
  ``REDACTED_DATA``) after it; ``citations`` gives the text block a citation.
- Tokens: one per word. Prompt caching: the prefix up to the last ``cache_control``
  breakpoint (tools, then system, then messages) counts as
  ``cache_creation_input_tokens`` the first time the fake sees it and as
  ``cache_read_input_tokens`` afterwards (no minimum length).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from gatewise.providers.schema_sample import sample_from_schema
from gatewise.testing.openai_reply import ECHO_LIMIT, count_tokens
from gatewise.testing.scenario import MARKER_PREFIX, strip_markers

__all__ = [
    "REDACTED_DATA",
    "MessageReply",
    "PromptCache",
    "compose_message",
    "count_input_tokens",
    "last_user_text",
    "prompt_usage",
    "thinking_signature",
]

#: The opaque data of the fake's redacted-thinking blocks.
REDACTED_DATA = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"


def thinking_signature(text: str) -> str:
    """The signature the fake issues for a thinking block's text (and checks it back)."""
    return "EqQBCkgIARABGAIiQ" + format(zlib.crc32(text.encode()), "010d")


@dataclass(slots=True)
class MessageReply:
    """One assistant message: optional thinking, text, tool calls, and its usage."""

    text: str
    tool_calls: list[tuple[str, Any]]  # (tool name, input object)
    stop_reason: str
    stop_sequence: str | None
    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    output_tokens: int = 0
    thinking: str | None = None
    tool_inputs: list[str] = field(default_factory=list)  # the inputs as JSON text
    redacted_thinking: str | None = None  # the data of a redacted-thinking block
    citations: list[dict[str, Any]] | None = None  # of the text block


class PromptCache:
    """The prompt prefixes the fake has "cached" (bounded; thread-safe enough for a set)."""

    def __init__(self, limit: int = 4096) -> None:
        self._seen: set[int] = set()
        self._limit = limit

    def hit(self, key: int) -> bool:
        """True when ``key`` was seen before; remembers it otherwise."""
        if key in self._seen:
            return True
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen.add(key)
        return False

    def clear(self) -> None:
        self._seen.clear()


def block_text(content: Any) -> str:
    """The text of a message's content: a string, or its text blocks joined by spaces."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return " ".join(
        b["text"]
        for b in content
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    )


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return block_text(message.get("content"))
    return ""


def _tool_results(message: Any) -> list[dict[str, Any]] | None:
    content = message.get("content") if isinstance(message, dict) else None
    if message.get("role") != "user" or not isinstance(content, list):
        return None
    results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    return results or None


def compose_message(
    body: dict[str, Any],
    cache: PromptCache,
    content: str | None = None,
    *,
    redacted_thinking: bool = False,
    citations: bool = False,
) -> MessageReply:
    """Answer a validated Messages request (``messages`` is a list)."""
    messages: list[Any] = body["messages"]
    results = _tool_results(messages[-1]) if messages else None
    input_tokens, created, read = prompt_usage(body, cache)
    reply = MessageReply("", [], "end_turn", None, input_tokens, created, read)
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        reply.thinking = "Let me think about this request step by step."
    calls = None if results is not None else _pick_tools(body, last_user_text(messages))
    if calls:
        reply.tool_calls = [
            (tool["name"], sample_from_schema(tool["input_schema"])) for tool in calls
        ]
        reply.tool_inputs = [orjson.dumps(arguments).decode() for _, arguments in reply.tool_calls]
        reply.stop_reason = "tool_use"
    else:
        text = content if content is not None else _default_text(body, messages, results)
        reply.text, reply.stop_reason, reply.stop_sequence = _apply_limits(body, text)
    if redacted_thinking:
        reply.redacted_thinking = REDACTED_DATA
    if citations and reply.text:
        reply.citations = [citation(reply.text)]
    words = count_tokens(reply.text) + sum(count_tokens(i) for i in reply.tool_inputs)
    reply.output_tokens = max(1, words + count_tokens(reply.thinking or ""))
    return reply


def citation(text: str) -> dict[str, Any]:
    """A character-range citation of a (pretend) document for ``text``."""
    cited = text[:40]
    return {
        "type": "char_location",
        "cited_text": cited,
        "document_index": 0,
        "document_title": "Fake document",
        "start_char_index": 0,
        "end_char_index": len(cited),
    }


def _default_text(
    body: dict[str, Any], messages: list[Any], results: list[dict[str, Any]] | None
) -> str:
    if results is not None:
        text = "Tool result: " + " ".join(block_text(r.get("content")) for r in results)
    else:
        user = last_user_text(messages)
        if MARKER_PREFIX in user:
            user = strip_markers(user)
        text = "Echo: " + user
    text = text[:ECHO_LIMIT]
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return orjson.dumps(sample_from_schema(fmt.get("schema"))).decode()
    return text


def _apply_limits(body: dict[str, Any], text: str) -> tuple[str, str, str | None]:
    for word in body.get("stop_sequences") or ():
        if word and word in text:
            return text[: text.index(word)], "stop_sequence", word
    limit = body.get("max_tokens")
    if isinstance(limit, int) and limit > 0:
        words = text.split()
        if len(words) > limit:
            return " ".join(words[:limit]), "max_tokens", None
    return text, "end_turn", None


def _pick_tools(body: dict[str, Any], user_text: str) -> list[dict[str, Any]]:
    tools = [
        t
        for t in body.get("tools") or ()
        if isinstance(t, dict) and isinstance(t.get("input_schema"), dict)
    ]
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none":
        return []
    if choice.get("type") == "tool":
        return [t for t in tools if t["name"] == choice.get("name")][:1]
    named = [t for t in tools if t["name"] in user_text]
    if choice.get("disable_parallel_tool_use"):
        named = named[:1]
    return named or tools[:1]


# --- usage ---------------------------------------------------------------------------


_STRUCTURAL = frozenset({"type", "cache_control", "id", "tool_use_id", "media_type"})


def _words(value: Any) -> int:
    """Tokens in a JSON value: the words of its strings (structural fields left out)."""
    if isinstance(value, str):
        return count_tokens(value)
    if isinstance(value, dict):
        return sum(_words(v) for k, v in value.items() if k not in _STRUCTURAL)
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    return 0


def _segments(body: dict[str, Any]) -> list[Any]:
    """The prompt in cache order (tools, system, messages), one item per cacheable block."""
    segments: list[Any] = list(body.get("tools") or ())
    system = body.get("system")
    if isinstance(system, list):
        segments += system
    elif system:
        segments.append(system)
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            segments += content
        elif content:
            segments.append(content)
    return segments


def count_input_tokens(body: dict[str, Any]) -> int:
    """What ``/v1/messages/count_tokens`` answers: every prompt token, cached or not."""
    return max(1, sum(_words(segment) for segment in _segments(body)))


def prompt_usage(body: dict[str, Any], cache: PromptCache) -> tuple[int, int, int]:
    """(input_tokens, cache_creation_input_tokens, cache_read_input_tokens) of a request."""
    total = cached = key = cached_key = 0
    for segment in _segments(body):
        total += _words(segment)
        key = zlib.crc32(orjson.dumps(segment), key)
        if isinstance(segment, dict) and "cache_control" in segment:
            cached = total
            cached_key = key
    total = max(total, 1)
    if not cached:
        return total, 0, 0
    if cache.hit(cached_key):
        return total - cached, 0, cached
    return total - cached, cached, 0

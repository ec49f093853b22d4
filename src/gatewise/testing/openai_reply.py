"""What the fake "model" answers: deterministic, cheap, and predictable by tests.

- Chat: ``"Echo: " + <last user text>`` (markers stripped, truncated); a tool call when
  tools are offered; a JSON document when ``response_format`` asks for one; ``stop``
  and ``max_tokens`` applied on words.
- Tokens: one token per whitespace-separated word (at least 1 per prompt).
- Embeddings: a unit vector picked from a fixed pseudo-random table by a CRC of the input,
  so equal inputs give equal vectors across processes and runs.
"""

from __future__ import annotations

import base64
import math
import random
import sys
import zlib
from array import array
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import orjson

from gatewise.providers.schema_sample import sample_from_schema
from gatewise.testing.scenario import MARKER_PREFIX, strip_markers

__all__ = [
    "ECHO_LIMIT",
    "MAX_DIMENSIONS",
    "Reply",
    "compose_reply",
    "count_tokens",
    "embedding_value",
    "last_user_text",
    "message_text",
]

ECHO_LIMIT = 200
MAX_DIMENSIONS = 8192


@dataclass(slots=True)
class Reply:
    """The answer for one choice: text content or a single function tool call."""

    content: str | None
    tool_name: str | None
    tool_arguments: str | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def count_tokens(text: str) -> int:
    """The fake's tokenizer: one token per word."""
    return len(text.split())


def message_text(content: Any) -> str:
    """The text of a message's ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


def compose_reply(body: dict[str, Any], content: str | None = None) -> Reply:
    """Answer a validated chat request (``messages`` is a non-empty list)."""
    messages: list[Any] = body["messages"]
    prompt_tokens = _prompt_tokens(messages)
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    after_tool = last.get("role") == "tool"
    tool = None if after_tool or "tools" not in body else _pick_tool(body)
    if tool is not None:
        arguments = orjson.dumps(sample_from_schema(tool.get("parameters"))).decode()
        return Reply(
            None,
            str(tool.get("name")),
            arguments,
            "tool_calls",
            prompt_tokens,
            count_tokens(arguments),
        )
    if content is None:
        content = _default_content(body, messages, last, after_tool)
    content, finish = _apply_limits(body, content)
    return Reply(content, None, None, finish, prompt_tokens, count_tokens(content))


def _prompt_tokens(messages: list[Any]) -> int:
    total = 0
    for message in messages:
        if type(message) is dict:
            content = message.get("content")
            if type(content) is str:
                total += len(content.split())
            else:
                total += count_tokens(message_text(content))
    return total or 1


def _default_content(
    body: dict[str, Any], messages: list[Any], last: dict[str, Any], after_tool: bool
) -> str:
    if after_tool:
        text = "Tool result: " + message_text(last.get("content"))
    else:
        user = last_user_text(messages)
        if MARKER_PREFIX in user:
            user = strip_markers(user)
        text = "Echo: " + user
    if len(text) > ECHO_LIMIT:
        text = text[:ECHO_LIMIT]
    response_format = body.get("response_format")
    if response_format is not None and isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind == "json_object":
            return orjson.dumps({"echo": text}).decode()
        if kind == "json_schema":
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            return orjson.dumps(sample_from_schema(schema)).decode()
    return text


def _apply_limits(body: dict[str, Any], content: str) -> tuple[str, str]:
    finish = "stop"
    stop = body.get("stop")
    if stop:
        for word in [stop] if isinstance(stop, str) else stop:
            if isinstance(word, str) and word and word in content:
                content = content[: content.index(word)]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and limit > 0:
        words = content.split()
        if len(words) > limit:
            content = " ".join(words[:limit])
            finish = "length"
    return content, finish


def _pick_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function to call: the one forced by ``tool_choice``, else the first offered."""
    tools = body.get("tools")
    if not tools or not isinstance(tools, list):
        return None
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        return None
    functions: list[dict[str, Any]] = [
        tool["function"]
        for tool in tools
        if isinstance(tool, dict)
        and tool.get("type") == "function"
        and isinstance(tool.get("function"), dict)
    ]
    if not functions:
        return None
    wanted: list[str] = []
    if isinstance(choice, dict):
        if isinstance(choice.get("function"), dict):
            wanted = [choice["function"].get("name")]
        elif isinstance(choice.get("allowed_tools"), dict):
            allowed = choice["allowed_tools"].get("tools") or []
            wanted = [
                t["function"].get("name")
                for t in allowed
                if isinstance(t, dict) and isinstance(t.get("function"), dict)
            ]
    for name in wanted:
        for function in functions:
            if function.get("name") == name:
                return function
    return functions[0]


# -- embeddings ----------------------------------------------------------------
_TABLE_SIZE = 1 << 14


@cache
def _table() -> tuple[array[float], list[float]]:
    """A fixed pseudo-random table (doubled, for wrap-around windows) and its square sums."""
    rng = random.Random(20240601)
    values = [rng.gauss(0.0, 1.0) for _ in range(_TABLE_SIZE)]
    table = array("d", values + values)
    sums = [0.0]
    total = 0.0
    for value in table:
        total += value * value
        sums.append(total)
    return table, sums


@lru_cache(maxsize=4096)
def embedding_value(key: bytes, dimensions: int, as_base64: bool) -> list[float] | str:
    """The embedding for one input: float32 values as a list, or OpenAI's base64 of them."""
    table, sums = _table()
    offset = zlib.crc32(key) % _TABLE_SIZE
    scale = 1.0 / math.sqrt(sums[offset + dimensions] - sums[offset])
    vector = array("f", [x * scale for x in table[offset : offset + dimensions]])
    if not as_base64:
        return vector.tolist()
    if sys.byteorder == "big":
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode("ascii")

"""What the fake Gemini "model" answers: deterministic, cheap, predictable by tests.

The same conventions as the OpenAI fake (``openai_reply``), read from Gemini's request:

- text: ``"Echo: " + <last user text>`` (markers stripped, truncated); after a
  ``functionResponse``: ``"Tool result: " + <its content>``;
- function calls when ``tools`` declare functions (unless ``toolConfig`` mode is
  ``NONE``): the first declared function, or, in ``ANY`` mode with
  ``allowedFunctionNames``, one call per allowed name (parallel calls), with arguments
  sampled from the declared schema;
- ``responseMimeType: application/json``: a document following ``responseSchema``
  (or ``{"echo": text}``); ``stopSequences`` and ``maxOutputTokens`` apply on words
  (``MAX_TOKENS``); tokens are words, as in the OpenAI fake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from gatewise.providers.schema_sample import sample_from_schema
from gatewise.testing.openai_reply import ECHO_LIMIT, count_tokens
from gatewise.testing.scenario import MARKER_PREFIX, strip_markers

__all__ = ["GeminiReply", "compose_reply", "last_user_text", "parts_text"]


@dataclass(slots=True)
class GeminiReply:
    """One candidate's answer: text, or function calls as (name, args)."""

    text: str | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def parts_text(parts: Any) -> str:
    if not isinstance(parts, list):
        return ""
    return " ".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def last_user_text(body: dict[str, Any]) -> str:
    contents = body.get("contents")
    if not isinstance(contents, list):
        return ""
    for content in reversed(contents):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            text = parts_text(content.get("parts"))
            if text:
                return text
    return ""


def compose_reply(
    body: dict[str, Any], content: str | None = None, finish_reason: str | None = None
) -> GeminiReply:
    """Answer a validated request (``contents`` is a non-empty list of contents)."""
    contents: list[dict[str, Any]] = body["contents"]
    prompt = _prompt_tokens(body)
    last_parts = contents[-1].get("parts") or []
    results = [p["functionResponse"] for p in last_parts if "functionResponse" in p]
    if not results:
        calls = _calls(body)
        if calls:
            arguments = sum(count_tokens(orjson.dumps(args).decode()) for _, args in calls)
            return GeminiReply(None, finish_reason or "STOP", prompt, max(arguments, 1), calls)
    if content is None:
        content = _default_text(body, results)
    content, finish = _apply_limits(body, content)
    return GeminiReply(content, finish_reason or finish, prompt, count_tokens(content))


def _prompt_tokens(body: dict[str, Any]) -> int:
    total = 0
    system = body.get("systemInstruction")
    if isinstance(system, dict):
        total += count_tokens(parts_text(system.get("parts")))
    for content in body["contents"]:
        total += count_tokens(parts_text(content.get("parts")))
    return total or 1


def _default_text(body: dict[str, Any], results: list[Any]) -> str:
    if results:
        response = results[0].get("response") if isinstance(results[0], dict) else None
        inner = response.get("content") if isinstance(response, dict) else None
        shown = inner if isinstance(inner, str) else orjson.dumps(response).decode()
        text = "Tool result: " + shown
    else:
        user = last_user_text(body)
        if MARKER_PREFIX in user:
            user = strip_markers(user)
        text = "Echo: " + user
    text = text[:ECHO_LIMIT]
    config = body.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseSchema")
        return orjson.dumps(sample_from_schema(schema) if schema else {"echo": text}).decode()
    return text


def _apply_limits(body: dict[str, Any], text: str) -> tuple[str, str]:
    config = body.get("generationConfig") or {}
    for stop in config.get("stopSequences") or ():
        if isinstance(stop, str) and stop and stop in text:
            text = text[: text.index(stop)]
    limit = config.get("maxOutputTokens")
    if isinstance(limit, int) and limit > 0:
        words = text.split()
        if len(words) > limit:
            return " ".join(words[:limit]), "MAX_TOKENS"
    return text, "STOP"


def _calls(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    declarations = [
        d
        for tool in body.get("tools") or ()
        if isinstance(tool, dict)
        for d in tool.get("functionDeclarations") or ()
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    ]
    if not declarations:
        return []
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = config.get("mode", "AUTO")
    if mode == "NONE":
        return []
    allowed = config.get("allowedFunctionNames")
    chosen = declarations[:1]
    if mode == "ANY" and isinstance(allowed, list) and allowed:
        chosen = [d for name in allowed for d in declarations if d["name"] == name]
    return [(d["name"], _arguments(d.get("parameters"))) for d in chosen]


def _arguments(schema: Any) -> dict[str, Any]:
    value = sample_from_schema(schema)
    return value if isinstance(value, dict) else {}

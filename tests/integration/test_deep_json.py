"""Deeply nested JSON in any field is a 400 naming the field, in each front door's format.

Before the cap, 500 to 1,000 levels passed the parser (orjson reads 1,024) and then
broke the re-encoding (orjson writes 254, msgspec recurses in Python): a 500.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from gatewise.testing.gateway import RunningGateway
from tests.rawhttp import post

USER = [{"role": "user", "content": "hi"}]
CHAT = {"model": "gpt-4o-mini", "messages": USER}
MESSAGES = {"model": "gpt-4o-mini", "max_tokens": 16, "messages": USER}


def objects(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def arrays(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def encode(body: dict[str, Any]) -> bytes:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))  # the standard library recurses per level
    try:
        return json.dumps(body).encode()
    finally:
        sys.setrecursionlimit(limit)


# (path, body with a value nested ``depth`` levels, the field the 400 names)
CASES = {
    "chat logit_bias": ("/v1/chat/completions", lambda d: {**CHAT, "logit_bias": objects(d)}),
    "chat response_format": (
        "/v1/chat/completions",
        lambda d: {**CHAT, "response_format": {"type": "json_schema", "json_schema": objects(d)}},
    ),
    "chat tool_choice": ("/v1/chat/completions", lambda d: {**CHAT, "tool_choice": objects(d)}),
    "chat tool parameters": (
        "/v1/chat/completions",
        lambda d: {**CHAT, "tools": [{"type": "function", "function": {"parameters": objects(d)}}]},
    ),
    "chat unknown field": ("/v1/chat/completions", lambda d: {**CHAT, "vendor_x": arrays(d)}),
    "embeddings unknown field": (
        "/v1/embeddings",
        lambda d: {"model": "text-embedding-3-small", "input": "x", "vendor_x": arrays(d)},
    ),
    "responses text": (
        "/v1/responses",
        lambda d: {"model": "gpt-4o-mini", "input": "hi", "text": objects(d)},
    ),
    "responses unknown field": (
        "/v1/responses",
        lambda d: {"model": "gpt-4o-mini", "input": "hi", "vendor_x": arrays(d)},
    ),
    "messages tool input_schema": (
        "/v1/messages",
        lambda d: {**MESSAGES, "tools": [{"name": "f", "input_schema": objects(d)}]},
    ),
    "messages unknown field": ("/v1/messages", lambda d: {**MESSAGES, "vendor_x": arrays(d)}),
}
FIELDS = {
    "chat logit_bias": "logit_bias",
    "chat response_format": "response_format",
    "chat tool_choice": "tool_choice",
    "chat tool parameters": "tools[0].function.parameters",
    "chat unknown field": "vendor_x",
    "embeddings unknown field": "vendor_x",
    "responses text": "text",
    "responses unknown field": "vendor_x",
    "messages tool input_schema": "tools[0].input_schema",
    "messages unknown field": "vendor_x",
}


@pytest.mark.parametrize("depth", [500, 1000])
@pytest.mark.parametrize("case", list(CASES))
def test_deep_nesting_is_a_400_naming_the_field(
    gateway: RunningGateway, case: str, depth: int
) -> None:
    path, build = CASES[case]
    reply = post(gateway.url + path, encode(build(depth)))
    assert reply.status == 400, reply.body[:300]
    assert reply.headers["content-type"] == "application/json"
    if path == "/v1/messages":  # Anthropic's envelope
        assert reply.json["type"] == "error"
        error = reply.json["error"]
        assert set(error) == {"type", "message"}
    else:  # OpenAI's
        error = reply.json["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["param"].startswith(FIELDS[case])
    assert error["type"] == "invalid_request_error"
    assert "nested too deeply" in error["message"] and FIELDS[case] in error["message"]


@pytest.mark.parametrize("case", ["chat unknown field", "responses text", "messages unknown field"])
def test_nesting_at_the_limit_is_served(gateway: RunningGateway, case: str) -> None:
    path, build = CASES[case]
    reply = post(gateway.url + path, encode(build(63)))  # 64 levels with the body
    assert reply.status == 200, reply.body[:300]

"""Canonical chat results -> Responses API objects (``Response``, output items, usage)."""

from __future__ import annotations

import time

from gatewise.core.types import ChatResponse, JSONObject, ToolCall, Usage
from gatewise.http.responses_ids import ResponseIds

# finish_reason -> why a response is ``incomplete``.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_response(ids: ResponseIds, echo: JSONObject, created_at: int) -> JSONObject:
    """A Response in progress: what ``response.created`` carries and ``finish`` completes."""
    return {
        "id": ids.response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "output": [],
        "usage": None,
        **echo,
    }


def finish(
    response: JSONObject, output: list[JSONObject], finish_reason: str | None, usage: Usage | None
) -> JSONObject:
    """Complete ``response`` in place: status, output, usage."""
    reason = _INCOMPLETE.get(finish_reason or "")
    if reason is None:
        response["status"] = "completed"
        response["completed_at"] = int(time.time())
    else:
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": reason}
    response["output"] = output
    response["usage"] = responses_usage(usage)
    return response


def fail(response: JSONObject, output: list[JSONObject], code: str, message: str) -> JSONObject:
    response["status"] = "failed"
    response["error"] = {"code": code, "message": message}
    response["output"] = output
    return response


def responses_usage(usage: Usage | None) -> JSONObject | None:
    """Chat usage under the Responses API's names."""
    if usage is None:
        return None
    prompt_details = usage.prompt_tokens_details or {}
    completion_details = usage.completion_tokens_details or {}
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": prompt_details.get("cached_tokens") or 0,
            "cache_write_tokens": prompt_details.get("cache_write_tokens") or 0,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {
            "reasoning_tokens": completion_details.get("reasoning_tokens") or 0
        },
        "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
    }


def text_part(text: str) -> JSONObject:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, parts: list[JSONObject], status: str) -> JSONObject:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": parts,
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> JSONObject:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def output_items(response: ChatResponse, ids: ResponseIds) -> list[JSONObject]:
    """The output items of a complete chat response (its first choice)."""
    if not response.choices:
        return [message_item(ids.item("message"), [text_part("")], "completed")]
    choice = response.choices[0]
    status = "incomplete" if choice.finish_reason in _INCOMPLETE else "completed"
    message = choice.message
    items: list[JSONObject] = []
    parts: list[JSONObject] = []
    if message.content:
        parts.append(text_part(message.content))
    if message.refusal:
        parts.append({"type": "refusal", "refusal": message.refusal})
    if parts or not message.tool_calls:
        items.append(message_item(ids.item("message"), parts or [text_part("")], status))
    for call in message.tool_calls or ():
        items.append(_call_item(call, ids, status))
    return items


def _call_item(call: ToolCall, ids: ResponseIds, status: str) -> JSONObject:
    function = call.function
    return function_call_item(
        ids.item("function_call"), call.id, function.name or "", function.arguments or "", status
    )

"""Responses API input items: validation, normalisation, and translation to chat messages.

Items are normalised once (a plain string becomes a user message, string
content becomes one text part) and stored in that form, so a conversation
rebuilt from the store goes through the same ``items_to_messages`` as a
fresh request. ``item_reference`` items are resolved by the front door (they
need the store) before translation.
"""

from __future__ import annotations

from typing import Any

from gatewise.core.errors import InvalidRequestError
from gatewise.core.types import FunctionCall, JSONObject, Message, ToolCall
from gatewise.formats.openai import json_kind

MESSAGE_ROLES = frozenset({"user", "assistant", "system", "developer"})
# Items the gateway understands; ``reasoning`` is accepted and left out of the chat context.
ITEM_TYPES = frozenset(
    {"message", "function_call", "function_call_output", "item_reference", "reasoning"}
)
_TEXT_PARTS = frozenset({"input_text", "output_text"})
_ASSISTANT_PARTS = frozenset({"input_text", "output_text", "refusal"})


def _require_str(item: JSONObject, key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        if value is None:
            raise InvalidRequestError(
                f"Missing required parameter: '{where}.{key}'.", param=f"{where}.{key}"
            )
        raise InvalidRequestError(
            f"Invalid type for '{where}.{key}': expected a string, but got {json_kind(value)} "
            "instead.",
            param=f"{where}.{key}",
        )
    return value


# --- normalisation ------------------------------------------------------------------


def normalize_input(value: object) -> list[JSONObject]:
    """The request's ``input`` as a list of validated items (copies; the body is not changed)."""
    if isinstance(value, str):
        return [_message("user", [{"type": "input_text", "text": value}])]
    if not isinstance(value, list):
        raise InvalidRequestError(
            f"Invalid type for 'input': expected a string or an array of input items, but got "
            f"{json_kind(value)} instead.",
            param="input",
        )
    return [normalize_item(item, f"input[{index}]") for index, item in enumerate(value)]


def normalize_item(item: object, where: str) -> JSONObject:
    if not isinstance(item, dict):
        raise InvalidRequestError(
            f"Invalid type for '{where}': expected an input item object, but got "
            f"{json_kind(item)} instead.",
            param=where,
        )
    item_type = item.get("type", "message" if "role" in item else None)
    if item_type not in ITEM_TYPES:
        if item_type is None:
            raise InvalidRequestError(
                f"Missing required parameter: '{where}.type'.", param=f"{where}.type"
            )
        raise InvalidRequestError(
            f"Input items of type '{item_type}' are not supported by this gateway; send "
            "messages, function_call, function_call_output or item_reference items.",
            param=f"{where}.type",
        )
    normalized = dict(item)
    normalized["type"] = item_type
    if item_type == "message":
        role = _require_str(item, "role", where)
        if role not in MESSAGE_ROLES:
            raise InvalidRequestError(
                f"Invalid value for '{where}.role': '{role}'; use user, assistant, system or "
                "developer.",
                param=f"{where}.role",
            )
        normalized["content"] = _normalize_content(role, item.get("content"), where)
    elif item_type == "function_call":
        for key in ("call_id", "name", "arguments"):
            _require_str(item, key, where)
    elif item_type == "function_call_output":
        _require_str(item, "call_id", where)
        output = item.get("output")
        if isinstance(output, list):
            _check_parts(output, f"{where}.output")
        elif not isinstance(output, str):
            raise InvalidRequestError(
                f"Invalid type for '{where}.output': expected a string or an array of content "
                f"parts, but got {json_kind(output)} instead.",
                param=f"{where}.output",
            )
    elif item_type == "item_reference":
        _require_str(item, "id", where)
    return normalized


def _message(role: str, content: list[JSONObject]) -> JSONObject:
    return {"type": "message", "role": role, "content": content}


def _normalize_content(role: str, content: object, where: str) -> list[JSONObject]:
    if isinstance(content, str):
        return [{"type": "output_text" if role == "assistant" else "input_text", "text": content}]
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"Invalid type for '{where}.content': expected a string or an array of content "
            f"parts, but got {json_kind(content)} instead.",
            param=f"{where}.content",
        )
    _check_parts(content, f"{where}.content", assistant=role == "assistant")
    return list(content)


def _check_parts(parts: list[Any], where: str, *, assistant: bool = False) -> None:
    """Validate parts now, so translating a stored conversation later cannot fail."""
    for index, part in enumerate(parts):
        here = f"{where}[{index}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InvalidRequestError(
                f"Invalid value for '{here}': a content part is an object with a 'type'.",
                param=here,
            )
        if not assistant:
            _chat_part(part, here)
        elif part["type"] not in _ASSISTANT_PARTS:
            raise InvalidRequestError(
                f"Invalid value for '{here}.type': assistant messages hold output_text or "
                f"refusal parts, not '{part['type']}'.",
                param=f"{here}.type",
            )


# --- items -> chat messages ----------------------------------------------------------


def items_to_messages(items: list[JSONObject]) -> list[Message]:
    """Chat messages for a conversation's items (oldest first, references resolved).

    Consecutive ``function_call`` items (and the assistant message before them)
    become one assistant message with several ``tool_calls``, as chat expects.
    """
    messages: list[Message] = []
    merge_calls = False
    for item in items:
        item_type = item["type"]
        if item_type == "message":
            message = _chat_message(item)
            messages.append(message)
            merge_calls = message.role == "assistant"
        elif item_type == "function_call":
            call = ToolCall(
                id=item["call_id"], function=FunctionCall(item["name"], item["arguments"])
            )
            if merge_calls:
                last = messages[-1]
                last.tool_calls = [*(last.tool_calls or []), call]
            else:
                messages.append(Message(role="assistant", tool_calls=[call]))
                merge_calls = True
        elif item_type == "function_call_output":
            output = item["output"]
            content = output if isinstance(output, str) else _user_content(output)
            messages.append(Message(role="tool", tool_call_id=item["call_id"], content=content))
            merge_calls = False
        elif item_type == "item_reference":
            raise AssertionError("item references are resolved before translation")
        # ``reasoning`` items have no chat equivalent: left out.
    return messages


def _chat_message(item: JSONObject) -> Message:
    role = item["role"]
    parts: list[JSONObject] = item["content"]
    if role == "assistant":
        text = "".join(p.get("text", "") for p in parts if p["type"] in _TEXT_PARTS)
        refusal = "".join(p.get("refusal", "") for p in parts if p["type"] == "refusal")
        return Message(role="assistant", content=text or None, refusal=refusal or None)
    return Message(role=role, content=_user_content(parts))


def _user_content(parts: list[Any]) -> str | list[JSONObject]:
    converted = [_chat_part(part, "input") for part in parts]
    if len(converted) == 1 and converted[0]["type"] == "text":
        return str(converted[0]["text"])  # one text part: a plain string suits every backend
    return converted


def _chat_part(part: JSONObject, where: str) -> JSONObject:
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": part.get("text", "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise InvalidRequestError(
                f"'{where}': send images as 'image_url' (a URL or a data: URL); file ids are "
                "not supported by this gateway.",
                param=where,
            )
        image: JSONObject = {"url": url}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file = {k: part[k] for k in ("file_data", "file_id", "filename") if part.get(k)}
        if "file_data" not in file and "file_id" not in file:
            raise InvalidRequestError(
                f"'{where}': send files as 'file_data' (base64) or 'file_id'.", param=where
            )
        return {"type": "file", "file": file}
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": part.get("input_audio")}
    raise InvalidRequestError(
        f"Content parts of type '{kind}' are not supported here.", param=f"{where}.type"
    )

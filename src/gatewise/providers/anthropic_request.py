"""Canonical (OpenAI chat) request -> Anthropic Messages request body.

Rules from Anthropic's Messages API reference and OpenAI's chat API. Where the two
differ, these are the choices (each failure is a 400 ``invalid_request_error``
naming the field):

- ``n > 1`` is rejected (param ``n``): Anthropic returns one message per call and
  fanning out N upstream calls would multiply cost behind the client's back.
- ``temperature``: OpenAI allows 0..2, Anthropic 0..1. Values in (1, 2] are clamped
  to 1 (as Anthropic's own OpenAI-compatible endpoint does); values outside 0..2
  are rejected.
- System and developer messages are hoisted, in order, into the top-level ``system``
  (joined with blank lines; text blocks instead when a part carries ``cache_control``).
- Consecutive messages of one role become one turn; ``tool`` messages become
  ``tool_result`` blocks at the head of the following user turn.
- Empty text (``""`` content, empty text parts) is dropped, since Anthropic rejects
  empty text blocks; a request left with no messages is rejected. A final assistant
  message (a prefill) loses trailing whitespace, which Anthropic also rejects.
- ``response_format`` ``json_schema`` -> ``output_config.format``; ``json_object`` has
  no equivalent and becomes a system instruction to answer with one JSON object.
- An assistant message's ``thinking_blocks`` (in ``extra``: from the Anthropic front
  door, or sent back by an OpenAI-format client as received) open its turn, before
  its text and tool calls, as Anthropic requires when thinking is on.
- ``reasoning_effort`` -> ``output_config.effort``; ``user`` (or ``safety_identifier``)
  -> ``metadata.user_id``; ``allowed_tools`` narrows the tool list.
- OpenAI-only parameters (``_OPENAI_ONLY``) are ignored; any other unknown parameter
  is passed through verbatim, so Anthropic-native ones (``top_k``, ``thinking``,
  ``container`` ...) work from OpenAI clients.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatewise.core.errors import InvalidRequestError
from gatewise.core.types import ChatRequest, JSONObject, Message
from gatewise.formats.openai import check_json_depth

# Parameters of OpenAI's API that Anthropic has no use for (or means differently:
# OpenAI's ``metadata`` is stored-completion tags, its ``service_tier`` other tiers).
_OPENAI_ONLY = frozenset(
    {
        "audio",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "metadata",
        "modalities",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_retention",
        "service_tier",
        "store",
        "top_logprobs",
        "verbosity",
        "web_search_options",
    }
)
_THINKING_TYPES = frozenset({"thinking", "redacted_thinking"})
_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh"}
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
_EMPTY_SCHEMA: JSONObject = {"type": "object", "properties": {}}


def messages_request_body(
    request: ChatRequest, model: str, *, default_max_tokens: int, stream: bool
) -> bytes:
    """The JSON body of ``POST /v1/messages`` for ``request``, addressed to ``model``."""
    return orjson.dumps(
        messages_request(request, model, default_max_tokens=default_max_tokens, stream=stream)
    )


def messages_request(
    request: ChatRequest, model: str, *, default_max_tokens: int, stream: bool
) -> JSONObject:
    if request.n is not None and request.n > 1:
        raise InvalidRequestError(
            f"Invalid 'n': {request.n}. This model is served by Anthropic, which returns one "
            "choice per request; send n=1 (or several requests).",
            param="n",
        )
    system, messages = convert_messages(request.messages)
    limit = request.output_token_limit
    if limit is not None and limit < 1:
        param = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
        raise InvalidRequestError(f"Invalid '{param}': must be at least 1.", param=param)
    body: JSONObject = {"model": model, "max_tokens": limit or default_max_tokens}
    body["messages"] = messages
    if stream:
        body["stream"] = True
    if request.temperature is not None:
        body["temperature"] = _temperature(request.temperature)
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    if request.tools:
        tools, choice = _tools_and_choice(request)
        body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = choice
    output_config: JSONObject = {}
    if request.response_format is not None:
        schema = _response_schema(request.response_format)
        if schema is not None:
            output_config["format"] = {"type": "json_schema", "schema": schema}
        elif request.response_format.get("type") == "json_object":
            system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
    user = request.user
    if request.extra:
        user = _apply_extra(body, output_config, request.extra, user)
    if output_config:
        body["output_config"] = output_config
    if user:
        body["metadata"] = {"user_id": user}
    if system:
        body["system"] = _system_value(system)
    return body


def _temperature(value: float) -> float:
    if not 0 <= value <= 2:
        raise InvalidRequestError(
            f"Invalid 'temperature': {value}. Expected a value between 0 and 2.",
            param="temperature",
        )
    return min(value, 1.0)


def _apply_extra(
    body: JSONObject, output_config: JSONObject, extra: JSONObject, user: str | None
) -> str | None:
    """Map the parameters the canonical types do not model; returns the end user id."""
    for key, value in extra.items():
        if key in _OPENAI_ONLY:
            continue
        if key == "reasoning_effort":
            effort = _EFFORT.get(value) if isinstance(value, str) else None
            if effort is not None:
                output_config.setdefault("effort", effort)
        elif key == "safety_identifier":
            if user is None and isinstance(value, str):
                user = value
        elif key in ("functions", "function_call"):
            raise InvalidRequestError(
                f"'{key}' is deprecated and not supported for this model; use 'tools'.",
                param=key,
            )
        elif key == "output_config" and isinstance(value, dict):
            for name, setting in value.items():
                output_config.setdefault(name, setting)
        else:
            body.setdefault(key, value)  # an Anthropic-native parameter
    return user


def _system_value(blocks: list[JSONObject]) -> str | list[JSONObject]:
    if any("cache_control" in block for block in blocks):
        return blocks
    return "\n\n".join(block["text"] for block in blocks)


# --- messages ------------------------------------------------------------------


def convert_messages(messages: list[Message]) -> tuple[list[JSONObject], list[JSONObject]]:
    """(system text blocks, Anthropic turns) for the canonical messages."""
    system: list[JSONObject] = []
    turns: list[JSONObject] = []
    for i, message in enumerate(messages):
        role = message.role
        if role == "user":
            _append(turns, "user", _content_blocks(message.content, i, images=True))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, i))
        elif role == "tool":
            _add_tool_result(turns, _tool_result(message, i))
        elif role in ("system", "developer"):
            system += _content_blocks(message.content, i, images=False)
        else:
            raise InvalidRequestError(
                f"Invalid 'messages[{i}].role': '{role}' messages are not supported for this "
                "model; use 'tool' messages.",
                param=f"messages[{i}].role",
            )
    if turns and turns[-1]["role"] == "assistant":
        _strip_prefill(turns)
    if not turns:
        raise InvalidRequestError(
            "Invalid 'messages': at least one user or assistant message with content is required.",
            param="messages",
        )
    for turn in turns:
        blocks = turn["content"]
        if len(blocks) == 1 and len(blocks[0]) == 2 and blocks[0]["type"] == "text":
            turn["content"] = blocks[0]["text"]  # the plain form, as native clients send it
    return system, turns


def _append(turns: list[JSONObject], role: str, blocks: list[JSONObject]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"] += blocks
    else:
        turns.append({"role": role, "content": blocks})


def _add_tool_result(turns: list[JSONObject], block: JSONObject) -> None:
    """Results open the user turn (after earlier results), as Anthropic requires."""
    if not turns or turns[-1]["role"] != "user":
        turns.append({"role": "user", "content": [block]})
        return
    content: list[JSONObject] = turns[-1]["content"]
    at = 0
    while at < len(content) and content[at]["type"] == "tool_result":
        at += 1
    content.insert(at, block)


def _strip_prefill(turns: list[JSONObject]) -> None:
    blocks: list[JSONObject] = turns[-1]["content"]
    while blocks and blocks[-1]["type"] == "text":
        text = blocks[-1]["text"].rstrip()
        if text:
            blocks[-1]["text"] = text
            return
        blocks.pop()
    if not blocks:
        turns.pop()


def _content_blocks(content: Any, i: int, *, images: bool) -> list[JSONObject]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for j, part in enumerate(content):
        block = _part(part, f"messages[{i}].content[{j}]", images)
        if block is not None:
            blocks.append(block)
    return blocks


def _part(part: JSONObject, where: str, images: bool) -> JSONObject | None:
    kind = part.get("type")
    block: JSONObject
    if kind == "text" or kind == "refusal":
        text = part.get(kind)
        if not isinstance(text, str):
            raise InvalidRequestError(f"Invalid '{where}.{kind}': expected a string.", param=where)
        if not text:
            return None
        block = {"type": "text", "text": text}
    elif kind == "image_url" and images:
        block = {"type": "image", "source": _image_source(part.get("image_url"), where)}
    elif kind == "file" and images:
        block = _document(part.get("file"), where)
    else:
        allowed = "text and image_url" if images else "text"
        raise InvalidRequestError(
            f"Invalid '{where}.type': {kind!r} content is not supported here for this model "
            f"(supported: {allowed}).",
            param=f"{where}.type",
        )
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _image_source(image: Any, where: str) -> JSONObject:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise InvalidRequestError(
            f"Missing required parameter: '{where}.image_url.url'.", param=f"{where}.image_url"
        )
    if url.startswith("data:"):
        return _base64_source(url, f"{where}.image_url.url")
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    raise InvalidRequestError(
        f"Invalid '{where}.image_url.url': expected an https URL or a base64 data URL.",
        param=f"{where}.image_url.url",
    )


def _base64_source(url: str, where: str) -> JSONObject:
    header, comma, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or not media_type or not encoding.endswith("base64"):
        raise InvalidRequestError(
            f"Invalid '{where}': expected a base64 data URL such as 'data:image/png;base64,...'.",
            param=where,
        )
    return {"type": "base64", "media_type": media_type, "data": data}


def _document(file: Any, where: str) -> JSONObject:
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str) or not data.startswith("data:application/pdf"):
        raise InvalidRequestError(
            f"Invalid '{where}.file': only inline PDF files ('file_data' as a "
            "data:application/pdf;base64 URL) are supported for this model.",
            param=f"{where}.file",
        )
    return {"type": "document", "source": _base64_source(data, f"{where}.file.file_data")}


def _assistant_blocks(message: Message, i: int) -> list[JSONObject]:
    blocks = _content_blocks(message.content, i, images=False)
    thinking = message.extra.get("thinking_blocks") if message.extra else None
    if thinking:
        blocks[:0] = _thinking_blocks(thinking, i)
    for j, call in enumerate(message.tool_calls or ()):
        where = f"messages[{i}].tool_calls[{j}]"
        name = call.function.name
        if not name:
            raise InvalidRequestError(
                f"Missing required parameter: '{where}.function.name'.",
                param=f"{where}.function.name",
            )
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": name, "input": _arguments(call, where)}
        )
    return blocks


def _thinking_blocks(blocks: Any, i: int) -> list[JSONObject]:
    """The thinking and redacted-thinking blocks as they were received (other entries
    are refused: only Anthropic's blocks belong here)."""
    where = f"messages[{i}].thinking_blocks"
    if not isinstance(blocks, list):
        raise InvalidRequestError(f"Invalid '{where}': expected a list of blocks.", param=where)
    for j, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") not in _THINKING_TYPES:
            raise InvalidRequestError(
                f"Invalid '{where}[{j}]': expected a 'thinking' or 'redacted_thinking' block.",
                param=f"{where}[{j}]",
            )
    return blocks


def _arguments(call: Any, where: str) -> Any:
    """A tool call's JSON arguments string as the object Anthropic wants (``""`` -> ``{}``)."""
    text = call.function.arguments
    if not text:
        return {}
    param = f"{where}.function.arguments"
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"Invalid '{param}': the arguments are not valid JSON ({exc.msg}).", param=param
        ) from None
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"Invalid '{param}': the arguments must be a JSON object.", param=param
        )
    check_json_depth(value, param)  # it is encoded again (orjson stops at 254 levels)
    return value


def _tool_result(message: Message, i: int) -> JSONObject:
    if not message.tool_call_id:
        raise InvalidRequestError(
            f"Missing required parameter: 'messages[{i}].tool_call_id'.",
            param=f"messages[{i}].tool_call_id",
        )
    block: JSONObject = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    content = message.content
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif content:
        blocks = _content_blocks(content, i, images=True)
        if blocks:
            block["content"] = blocks
    if message.extra.get("is_error") is True:
        block["is_error"] = True
    return block


# --- tools and structured output -------------------------------------------------


def _tools_and_choice(request: ChatRequest) -> tuple[list[JSONObject], JSONObject | None]:
    tools = [_tool(tool, i) for i, tool in enumerate(request.tools or ())]
    choice = request.tool_choice
    mapped: JSONObject | None = None
    if choice is None or choice == "auto":
        mapped = {"type": "auto"} if choice is not None else None
    elif choice == "required":
        mapped = {"type": "any"}
    elif choice == "none":
        return tools, {"type": "none"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise InvalidRequestError(
                "Missing required parameter: 'tool_choice.function.name'.",
                param="tool_choice.function.name",
            )
        mapped = {"type": "tool", "name": name}
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        tools, mapped = _allowed_tools(tools, choice.get("allowed_tools"))
    else:
        raise InvalidRequestError(
            "Invalid 'tool_choice': expected 'auto', 'required', 'none' or a function.",
            param="tool_choice",
        )
    if request.parallel_tool_calls is False:
        mapped = {**(mapped or {"type": "auto"}), "disable_parallel_tool_use": True}
    return tools, mapped


def _tool(tool: JSONObject, i: int) -> JSONObject:
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict):
        raise InvalidRequestError(
            f"Invalid 'tools[{i}].type': only function tools are supported for this model.",
            param=f"tools[{i}].type",
        )
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(
            f"Missing required parameter: 'tools[{i}].function.name'.",
            param=f"tools[{i}].function.name",
        )
    converted: JSONObject = {"name": name}
    if function.get("description"):
        converted["description"] = function["description"]
    converted["input_schema"] = function.get("parameters") or _EMPTY_SCHEMA
    if function.get("strict") is True:
        converted["strict"] = True
    if "cache_control" in tool:
        converted["cache_control"] = tool["cache_control"]
    return converted


def _allowed_tools(tools: list[JSONObject], allowed: Any) -> tuple[list[JSONObject], JSONObject]:
    """OpenAI's ``allowed_tools`` choice: offer only those tools, ``auto`` or ``any``."""
    entries = allowed.get("tools") if isinstance(allowed, dict) else None
    if not isinstance(entries, list):
        raise InvalidRequestError(
            "Missing required parameter: 'tool_choice.allowed_tools.tools'.",
            param="tool_choice.allowed_tools.tools",
        )
    names = {
        entry["function"].get("name")
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("function"), dict)
    }
    mode = allowed.get("mode", "auto")
    return [t for t in tools if t["name"] in names], {
        "type": "any" if mode == "required" else "auto"
    }


def _response_schema(response_format: JSONObject) -> Any:
    """The JSON Schema a ``json_schema`` response format asks for (None for other kinds)."""
    kind = response_format.get("type")
    if kind != "json_schema":
        if kind not in ("text", "json_object"):
            raise InvalidRequestError(
                f"Invalid 'response_format.type': {kind!r}.", param="response_format.type"
            )
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise InvalidRequestError(
            "Missing required parameter: 'response_format.json_schema.schema'.",
            param="response_format.json_schema.schema",
        )
    return schema

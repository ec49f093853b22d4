"""A Responses API request (``POST /v1/responses``) -> the canonical chat request.

The Responses API is translated onto chat semantics so it works with every
configured model, whatever its provider. Mapping, field by field:

- ``instructions`` -> a leading system message (never carried over a
  ``previous_response_id`` chain, as OpenAI does); ``input`` -> messages (see
  ``responses_items``); flat function ``tools`` -> chat's nested tools;
  ``tool_choice``, ``text.format`` (-> ``response_format``), ``text.verbosity``
  (-> ``verbosity``), ``reasoning.effort`` (-> ``reasoning_effort``),
  ``max_output_tokens`` (-> ``max_completion_tokens``), ``temperature``,
  ``top_p``, ``parallel_tool_calls``, ``user``.
- Kept by the gateway, not sent upstream: ``metadata``, ``store``,
  ``previous_response_id``.
- Accepted, echoed, not acted on: ``include`` (no hosted tools produce the extra
  data), ``truncation`` (the upstream's own context-length error is relayed),
  ``max_tool_calls``, ``top_logprobs``, ``stream_options``, ``context_management``.
- Refused with 400: ``background: true``, ``conversation``, ``prompt``, and
  built-in tools (``web_search``, ``file_search`` ...): nothing would run them.
- Anything else is passed upstream verbatim (vendor options such as ``top_k``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gatewise.core.errors import InvalidRequestError
from gatewise.core.types import ChatRequest, JSONObject, StreamOptions
from gatewise.formats.openai import json_kind
from gatewise.http.responses_items import normalize_input

# Fields this module consumes; every other field goes upstream as it is.
_HANDLED = frozenset(
    {
        "model", "input", "instructions", "previous_response_id", "store", "stream",
        "stream_options", "background", "tools", "tool_choice", "text", "max_output_tokens",
        "temperature", "top_p", "parallel_tool_calls", "metadata", "user", "reasoning",
        "truncation", "include", "max_tool_calls", "top_logprobs", "conversation", "prompt",
        "context_management",
    }
)  # fmt: skip
_TOOL_CHOICE_MODES = frozenset({"none", "auto", "required"})
_METADATA_KEYS = 16


@dataclass(slots=True)
class ResponsesRequest:
    """A validated Responses request, ready for the front door."""

    model: str
    items: list[JSONObject]
    chat: ChatRequest  # ``messages`` are filled in once the conversation is known
    instructions: str | None
    previous_response_id: str | None
    store: bool
    stream: bool
    echo: JSONObject  # the request parameters the Response object repeats
    record: JSONObject  # the request as stored (the body without ``input``)


def _get(data: JSONObject, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        raise InvalidRequestError(
            f"Invalid type for '{key}': expected {what}, but got {json_kind(value)} instead.",
            param=key,
        )
    return value


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def parse_responses_request(data: JSONObject) -> ResponsesRequest:
    """Validate a Responses request and translate everything but the conversation."""
    model = _get(data, "model", str, "a string")
    if not model:
        raise InvalidRequestError("Missing required parameter: 'model'.", param="model")
    if "input" not in data or data["input"] is None:
        raise InvalidRequestError("Missing required parameter: 'input'.", param="input")
    _refuse_unsupported(data)
    items = normalize_input(data["input"])
    instructions = _get(data, "instructions", str, "a string")
    previous = _get(data, "previous_response_id", str, "a string")
    store = _get(data, "store", bool, "a boolean")
    stream = bool(_get(data, "stream", bool, "a boolean"))
    max_output = _get(data, "max_output_tokens", int, "an integer")
    if max_output is not None and max_output < 1:
        raise InvalidRequestError(
            "Invalid 'max_output_tokens': must be at least 1.", param="max_output_tokens"
        )
    temperature = _get(data, "temperature", (int, float), "a number")
    top_p = _get(data, "top_p", (int, float), "a number")
    parallel = _get(data, "parallel_tool_calls", bool, "a boolean")
    user = _get(data, "user", str, "a string")
    metadata = _metadata(data)
    reasoning = _get(data, "reasoning", dict, "an object")
    text = _get(data, "text", dict, "an object")
    truncation = _get(data, "truncation", str, "a string")
    if truncation not in (None, "auto", "disabled"):
        raise InvalidRequestError(
            "Invalid value for 'truncation': use 'auto' or 'disabled'.", param="truncation"
        )
    _get(data, "include", list, "an array")
    tools = _get(data, "tools", list, "an array")
    chat_tools = _chat_tools(tools) if tools else None
    tool_choice = data.get("tool_choice")
    chat_tool_choice = _chat_tool_choice(tool_choice) if tool_choice is not None else None

    extra = {k: v for k, v in data.items() if k not in _HANDLED}
    response_format = _response_format(text) if text is not None else None
    if text is not None and text.get("verbosity") is not None:
        extra["verbosity"] = text["verbosity"]
    if reasoning is not None and reasoning.get("effort") is not None:
        extra["reasoning_effort"] = reasoning["effort"]

    chat = ChatRequest(
        model=model,
        messages=[],
        stream=True if stream else None,
        # Usage is always part of response.completed: ask every provider for it.
        stream_options=StreamOptions(include_usage=True) if stream else None,
        max_completion_tokens=max_output,
        temperature=temperature,
        top_p=top_p,
        tools=chat_tools,
        # Chat refuses these two without tools.
        tool_choice=chat_tool_choice if chat_tools else None,
        parallel_tool_calls=parallel if chat_tools else None,
        response_format=response_format,
        user=user,
        extra=extra,
    )
    echo: JSONObject = {
        "instructions": instructions,
        "max_output_tokens": max_output,
        "max_tool_calls": data.get("max_tool_calls"),
        "metadata": metadata,
        "model": model,
        "parallel_tool_calls": True if parallel is None else parallel,
        "previous_response_id": previous,
        "reasoning": {
            "effort": (reasoning or {}).get("effort"),
            "summary": (reasoning or {}).get("summary"),
        },
        "service_tier": data.get("service_tier") or "default",
        "store": store is not False,
        "temperature": 1.0 if temperature is None else temperature,
        "text": text if text is not None else {"format": {"type": "text"}},
        "tool_choice": "auto" if tool_choice is None else tool_choice,
        "tools": tools or [],
        "top_logprobs": data.get("top_logprobs") or 0,
        "top_p": 1.0 if top_p is None else top_p,
        "truncation": truncation or "disabled",
        "user": user,
    }
    for key in ("safety_identifier", "prompt_cache_key"):
        if data.get(key) is not None:
            echo[key] = data[key]
    record = {k: v for k, v in data.items() if k != "input"}
    return ResponsesRequest(
        model=model,
        items=items,
        chat=chat,
        instructions=instructions,
        previous_response_id=previous,
        store=store is not False,
        stream=stream,
        echo=echo,
        record=record,
    )


def _refuse_unsupported(data: JSONObject) -> None:
    if data.get("background"):
        raise InvalidRequestError(
            "Background responses are not supported by this gateway; send the request "
            "without 'background' (or stream it).",
            param="background",
        )
    for key, what in (
        ("conversation", "Conversations"),
        ("prompt", "Reusable prompts"),
    ):
        if data.get(key) is not None:
            raise InvalidRequestError(
                f"{what} ('{key}') are not supported by this gateway; use "
                "'previous_response_id' or send the input items.",
                param=key,
            )


def _metadata(data: JSONObject) -> dict[str, str]:
    metadata = _get(data, "metadata", dict, "an object")
    if not metadata:
        return {}
    if len(metadata) > _METADATA_KEYS:
        raise InvalidRequestError(
            f"Invalid 'metadata': at most {_METADATA_KEYS} keys.", param="metadata"
        )
    for key, value in metadata.items():
        if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
            raise InvalidRequestError(
                f"Invalid 'metadata.{key}': keys are strings of at most 64 characters and "
                "values strings of at most 512.",
                param="metadata",
            )
    return dict(metadata)


def _chat_tools(tools: list[Any]) -> list[JSONObject]:
    chat_tools: list[JSONObject] = []
    built_in: list[str] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequestError(
                f"Invalid type for 'tools[{index}]': expected an object.", param=f"tools[{index}]"
            )
        if tool.get("type") != "function":
            built_in.append(str(tool.get("type")))
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(
                f"Missing required parameter: 'tools[{index}].name'.", param=f"tools[{index}].name"
            )
        function = {
            k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool
        }
        chat_tools.append({"type": "function", "function": function})
    if built_in:
        raise InvalidRequestError(
            "Only function tools are supported by this gateway; these built-in tools are not: "
            + ", ".join(built_in)
            + ".",
            param="tools",
        )
    return chat_tools


def _chat_tool_choice(choice: object) -> str | JSONObject:
    if isinstance(choice, str):
        if choice in _TOOL_CHOICE_MODES:
            return choice
    elif isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "function" and isinstance(choice.get("name"), str):
            return {"type": "function", "function": {"name": choice["name"]}}
        if kind == "allowed_tools" and isinstance(choice.get("tools"), list):
            allowed = [
                {"type": "function", "function": {"name": tool.get("name")}}
                for tool in choice["tools"]
                if isinstance(tool, dict) and tool.get("type") == "function"
            ]
            if len(allowed) == len(choice["tools"]):
                mode = choice.get("mode", "auto")
                return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": allowed}}
    raise InvalidRequestError(
        "Invalid 'tool_choice': use 'none', 'auto', 'required', "
        '{"type": "function", "name": ...} or allowed_tools naming function tools.',
        param="tool_choice",
    )


def _response_format(text: JSONObject) -> JSONObject | None:
    spec = text.get("format")
    if spec is None:
        return None
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        assert isinstance(spec, dict)
        if not isinstance(spec.get("name"), str) or not isinstance(spec.get("schema"), dict):
            raise InvalidRequestError(
                "Invalid 'text.format': a json_schema format needs a 'name' and a 'schema'.",
                param="text.format",
            )
        schema = {k: spec[k] for k in ("name", "schema", "strict", "description") if k in spec}
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequestError(
        'Invalid \'text.format\': use {"type": "text"}, {"type": "json_object"} or '
        '{"type": "json_schema", "name": ..., "schema": ...}.',
        param="text.format.type",
    )

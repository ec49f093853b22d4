"""Anthropic Messages request -> canonical ``ChatRequest`` (the front door's inbound half).

The provider's rules (``providers/anthropic_request.py``), mirrored. The choices where the
two APIs do not line up (each failure is a 400 ``invalid_request_error`` naming
the field, in Anthropic's ``path: problem`` style):

- ``system`` (string or text blocks) becomes one leading system message; blocks
  stay separate text parts. A ``system`` role inside ``messages`` stays in place.
- ``tool_result`` blocks become one ``tool`` message each, in order, followed by
  a user message with the rest of that turn. OpenAI tool messages cannot hold
  images, so a result's images move into that user message (after a text part
  naming the tool call); ``is_error`` is written into the result's text
  ("Error: ..."), the only place an OpenAI-family model sees it.
- ``thinking`` and ``redacted_thinking`` blocks of assistant turns are kept, as
  sent and in order, in the assistant message's ``extra["thinking_blocks"]``: the
  Anthropic provider puts them back at the head of the turn (Anthropic requires
  them in tool loops with thinking on), OpenAI-family and Gemini providers leave
  them out. Server-tool blocks and tools (web search, code execution ...) are
  refused: the gateway runs no server tools.

This translation is the canonical truth for policies and for upstreams of other
formats; an Anthropic upstream gets the client's own body instead (native
pass-through) unless a step of the corridor may rewrite requests.
- Documents: a base64 PDF becomes a ``file`` part, a plain-text document a text part.
- ``output_config.format`` (JSON schema) becomes ``response_format``.

Native parameters. ``top_k``, ``thinking``, ``output_config.effort``,
``service_tier``, ``cache_control`` and any field this module does not know are
OpenAI-incompatible (OpenAI answers 400 to unknown parameters), so they reach
the canonical ``extra`` (and ``cache_control`` stays on parts) only when
``native`` is set: every deployment of the model is an Anthropic upstream, whose
provider sends them on verbatim. Otherwise they are dropped and listed in
``Translation.dropped`` so the door can record the decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import orjson

from gatewise.core.errors import InvalidRequestError
from gatewise.core.types import (
    ChatRequest,
    FunctionCall,
    JSONObject,
    Message,
    StreamOptions,
    ToolCall,
)


class _Message(msgspec.Struct):
    role: Literal["user", "assistant", "system"]
    content: str | list[JSONObject]


class _Metadata(msgspec.Struct):
    user_id: str | None = None


class _Request(msgspec.Struct):
    """The fields the door reads; ``max_tokens`` is checked per endpoint."""

    model: str
    messages: list[_Message]
    max_tokens: int | None = None
    system: str | list[JSONObject] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    metadata: _Metadata | None = None
    tools: list[JSONObject] | None = None
    tool_choice: JSONObject | None = None
    thinking: JSONObject | None = None
    output_config: JSONObject | None = None


_KNOWN = frozenset(f.name for f in msgspec.structs.fields(_Request))
# Known fields that need no extra: mapped onto canonical fields (or meaningless there).
_MAPPED = frozenset(
    {"model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature"}
    | {"top_p", "metadata", "tools", "tool_choice", "output_config"}
)
_THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})


@dataclass(slots=True)
class Translation:
    """The canonical request and the client parameters that could not be carried."""

    chat: ChatRequest
    dropped: list[str] = field(default_factory=list)


def invalid(path: str, problem: str) -> InvalidRequestError:
    """A 400 in Anthropic's ``path: problem`` style (``param`` holds the path)."""
    return InvalidRequestError(f"{path}: {problem}", param=path)


def _validation_error(exc: msgspec.ValidationError) -> InvalidRequestError:
    text = str(exc)
    detail, _, where = text.partition(" - at `$")
    path = where.rstrip("`").lstrip(".").replace("[", ".").replace("]", "")
    if detail.startswith("Object missing required field `"):
        missing = detail.split("`")[1]
        return invalid(f"{path}.{missing}" if path else missing, "Field required")
    return invalid(path or "body", detail.replace("`", "'"))


def parse_request(data: JSONObject, *, native: bool, count_only: bool = False) -> Translation:
    """Translate a Messages request; ``count_only`` (count_tokens) needs no ``max_tokens``."""
    try:
        request = msgspec.convert(data, _Request)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    if not count_only:
        _check_sampling(request)
    translator = _Translator(native)
    messages = translator.system(request.system)
    for i, message in enumerate(request.messages):
        translator.message(message, i, messages)
    if not messages:
        raise invalid("messages", "at least one message is required")
    chat = ChatRequest(
        model=request.model,
        messages=messages,
        max_tokens=request.max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
    )
    if request.stream:
        chat.stream = True
        chat.stream_options = StreamOptions(include_usage=True)
    if request.stop_sequences:
        chat.stop = request.stop_sequences
    if request.metadata is not None and request.metadata.user_id:
        chat.user = request.metadata.user_id
    if request.tools:
        chat.tools = [_tool(tool, i) for i, tool in enumerate(request.tools)]
        _apply_tool_choice(chat, request.tool_choice)
    translation = Translation(chat)
    _apply_output_config(chat, request.output_config, translation, native)
    _carry_native(data, translation, native)
    return translation


def _check_sampling(request: _Request) -> None:
    if request.max_tokens is None:
        raise invalid("max_tokens", "Field required")
    if request.max_tokens < 1:
        raise invalid("max_tokens", "Input should be greater than or equal to 1")
    if request.temperature is not None and not 0 <= request.temperature <= 1:
        raise invalid("temperature", "Input should be between 0 and 1")
    if request.top_p is not None and not 0 <= request.top_p <= 1:
        raise invalid("top_p", "Input should be between 0 and 1")


def _carry_native(data: JSONObject, translation: Translation, native: bool) -> None:
    """Native-only parameters: into ``extra`` for Anthropic upstreams, else dropped."""
    for key, value in data.items():
        if key in _MAPPED:
            continue
        if key in _KNOWN and value is None:
            continue
        if native:
            translation.chat.extra[key] = value
        else:
            translation.dropped.append(key)


def _apply_output_config(
    chat: ChatRequest, config: JSONObject | None, translation: Translation, native: bool
) -> None:
    if not config:
        return
    rest = dict(config)
    fmt = rest.pop("format", None)
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
            raise invalid("output_config.format.type", "expected 'json_schema'")
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise invalid("output_config.format.schema", "Field required")
        chat.response_format = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema},
        }
    if not rest:
        return
    if native:  # ``effort`` and future settings: OpenAI has no equivalent field
        chat.extra["output_config"] = rest
    else:
        translation.dropped += [f"output_config.{key}" for key in rest]


class _Translator:
    """Walks the conversation; ``native`` keeps Anthropic-only details on the parts."""

    __slots__ = ("native",)

    def __init__(self, native: bool) -> None:
        self.native = native

    def system(self, system: str | list[JSONObject] | None) -> list[Message]:
        if system is None:
            return []
        if isinstance(system, str):
            return [Message(role="system", content=system)] if system else []
        parts = [self.text_part(block, f"system.{j}") for j, block in enumerate(system)]
        return [Message(role="system", content=parts)] if parts else []

    def message(self, message: _Message, i: int, out: list[Message]) -> None:
        content = message.content
        role = message.role
        if isinstance(content, str):
            out.append(Message(role=role, content=content))
        elif role == "assistant":
            out.append(self.assistant(content, i))
        elif role == "system":
            parts = [self.text_part(b, f"messages.{i}.content.{j}") for j, b in enumerate(content)]
            out.append(Message(role="system", content=parts))
        else:
            self.user(content, i, out)

    # --- user turns --------------------------------------------------------------

    def user(self, blocks: list[JSONObject], i: int, out: list[Message]) -> None:
        parts: list[JSONObject] = []
        moved: list[JSONObject] = []  # images from tool results (non-native)
        had_results = False
        for j, block in enumerate(blocks):
            path = f"messages.{i}.content.{j}"
            kind = block.get("type")
            if kind == "tool_result":
                had_results = True
                out.append(self.tool_result(block, path, moved))
            else:
                parts.append(self.user_part(block, kind, path))
        if moved:
            parts = moved + parts
        if parts or not had_results:
            out.append(Message(role="user", content=_collapse(parts)))

    def user_part(self, block: JSONObject, kind: Any, path: str) -> JSONObject:
        if kind == "text":
            return self.text_part(block, path)
        if kind == "image":
            return self.image_part(block, path)
        if kind == "document":
            return self.document_part(block, path)
        if kind == "tool_use":
            raise invalid(f"{path}.type", "'tool_use' blocks belong in assistant messages")
        raise invalid(f"{path}.type", f"unsupported content block type {kind!r}")

    def tool_result(self, block: JSONObject, path: str, moved: list[JSONObject]) -> Message:
        tool_use_id = block.get("tool_use_id")
        if not isinstance(tool_use_id, str) or not tool_use_id:
            raise invalid(f"{path}.tool_use_id", "Field required")
        content = block.get("content")
        error = block.get("is_error") is True
        parts: list[JSONObject] = []
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}] if content else []
        elif isinstance(content, list):
            images: list[JSONObject] = []
            for k, item in enumerate(content):
                where = f"{path}.content.{k}"
                kind = item.get("type") if isinstance(item, dict) else None
                if kind == "text":
                    parts.append(self.text_part(item, where))
                elif kind == "image":
                    (parts if self.native else images).append(self.image_part(item, where))
                elif kind == "document":
                    parts.append(self.document_part(item, where))
                else:
                    raise invalid(f"{where}.type", f"unsupported tool result content {kind!r}")
            if images:
                note = f"Images returned by tool call {tool_use_id}:"
                moved += [{"type": "text", "text": note}, *images]
        elif content is not None:
            raise invalid(f"{path}.content", "expected a string or a list of content blocks")
        message = Message(role="tool", tool_call_id=tool_use_id, content=_collapse(parts))
        if error and self.native:
            message.extra["is_error"] = True
        elif error:
            message.content = _mark_error(message.content or "")
        return message

    # --- assistant turns -----------------------------------------------------------

    def assistant(self, blocks: list[JSONObject], i: int) -> Message:
        parts: list[JSONObject] = []
        calls: list[ToolCall] = []
        thinking: list[JSONObject] = []
        for j, block in enumerate(blocks):
            path = f"messages.{i}.content.{j}"
            kind = block.get("type")
            if kind == "text":
                parts.append(self.text_part(block, path))
            elif kind == "tool_use":
                calls.append(_tool_call(block, path))
            elif kind in _THINKING_BLOCKS:
                thinking.append(block)
            elif kind == "tool_result":
                raise invalid(f"{path}.type", "'tool_result' blocks belong in user messages")
            else:
                raise invalid(f"{path}.type", f"unsupported content block type {kind!r}")
        message = Message(
            role="assistant", content=_collapse(parts) if parts or not calls else None
        )
        if calls:
            message.tool_calls = calls
        if thinking:
            message.extra["thinking_blocks"] = thinking
        return message

    # --- parts ----------------------------------------------------------------------

    def text_part(self, block: Any, path: str) -> JSONObject:
        if not isinstance(block, dict) or block.get("type") != "text":
            raise invalid(f"{path}.type", "expected a 'text' block")
        text = block.get("text")
        if not isinstance(text, str):
            raise invalid(f"{path}.text", "Field required" if text is None else "expected a string")
        return self._keep_cache_control({"type": "text", "text": text}, block)

    def image_part(self, block: JSONObject, path: str) -> JSONObject:
        source = block.get("source")
        if not isinstance(source, dict):
            raise invalid(f"{path}.source", "Field required")
        kind = source.get("type")
        if kind == "base64":
            media_type, data = source.get("media_type"), source.get("data")
            if not isinstance(media_type, str) or not media_type:
                raise invalid(f"{path}.source.media_type", "Field required")
            if not isinstance(data, str) or not data:
                raise invalid(f"{path}.source.data", "Field required")
            url = f"data:{media_type};base64,{data}"
        elif kind == "url":
            link = source.get("url")
            if not isinstance(link, str) or not link:
                raise invalid(f"{path}.source.url", "Field required")
            url = link
        else:
            raise invalid(f"{path}.source.type", f"unsupported image source {kind!r}")
        return self._keep_cache_control({"type": "image_url", "image_url": {"url": url}}, block)

    def document_part(self, block: JSONObject, path: str) -> JSONObject:
        source = block.get("source")
        kind = source.get("type") if isinstance(source, dict) else None
        if isinstance(source, dict) and kind == "base64":
            if source.get("media_type") != "application/pdf":
                raise invalid(f"{path}.source.media_type", "only application/pdf is supported")
            data = source.get("data")
            if not isinstance(data, str) or not data:
                raise invalid(f"{path}.source.data", "Field required")
            file: JSONObject = {"file_data": f"data:application/pdf;base64,{data}"}
            title = block.get("title")
            file["filename"] = title if isinstance(title, str) and title else "document.pdf"
            return self._keep_cache_control({"type": "file", "file": file}, block)
        if isinstance(source, dict) and kind == "text":
            data = source.get("data")
            if not isinstance(data, str):
                raise invalid(f"{path}.source.data", "Field required")
            return self._keep_cache_control({"type": "text", "text": data}, block)
        raise invalid(
            f"{path}.source.type",
            f"unsupported document source {kind!r} (use base64 PDF or text)",
        )

    def _keep_cache_control(self, part: JSONObject, block: JSONObject) -> JSONObject:
        if self.native and "cache_control" in block:
            part["cache_control"] = block["cache_control"]
        return part


def _collapse(parts: list[JSONObject]) -> str | list[JSONObject]:
    """One plain text part becomes a string (the common, cheapest form); none becomes ""."""
    if not parts:
        return ""
    if len(parts) == 1 and len(parts[0]) == 2 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text
    return parts


def _mark_error(content: str | list[JSONObject]) -> str | list[JSONObject]:
    """Say in the text that the tool failed (OpenAI tool messages have no error flag)."""
    if isinstance(content, str):
        return f"Error: {content}" if content else "Error"
    return [{"type": "text", "text": "Error:"}, *content]


def _tool_call(block: JSONObject, path: str) -> ToolCall:
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(f"{path}.id", "Field required")
    if not isinstance(name, str) or not name:
        raise invalid(f"{path}.name", "Field required")
    arguments = block.get("input", {})
    if not isinstance(arguments, dict):
        raise invalid(f"{path}.input", "expected an object")
    return ToolCall(id=call_id, function=FunctionCall(name, orjson.dumps(arguments).decode()))


def _tool(tool: JSONObject, i: int) -> JSONObject:
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise invalid(
            f"tools.{i}.type",
            f"server tool {kind!r} is not supported through this gateway; "
            "define a client tool with 'name' and 'input_schema' instead",
        )
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise invalid(f"tools.{i}.name", "Field required")
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        raise invalid(f"tools.{i}.input_schema", "Field required")
    function: JSONObject = {"name": name}
    description = tool.get("description")
    if isinstance(description, str) and description:
        function["description"] = description
    function["parameters"] = schema
    if tool.get("strict") is True:
        function["strict"] = True
    return {"type": "function", "function": function}


def _apply_tool_choice(chat: ChatRequest, choice: JSONObject | None) -> None:
    if choice is None:
        return
    kind = choice.get("type")
    if kind == "auto":
        chat.tool_choice = "auto"
    elif kind == "any":
        chat.tool_choice = "required"
    elif kind == "none":
        chat.tool_choice = "none"
    elif kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid("tool_choice.name", "Field required")
        chat.tool_choice = {"type": "function", "function": {"name": name}}
    else:
        raise invalid("tool_choice.type", "expected one of 'auto', 'any', 'tool', 'none'")
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        chat.parallel_tool_calls = False

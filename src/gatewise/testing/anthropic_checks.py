"""Request validation of the fake Anthropic upstream, with the real API's messages.

The real Messages API is strict, and a translating gateway is only as good as
the requests it builds, so the fake rejects what the real API rejects (400
``invalid_request_error``): unknown top-level parameters (an OpenAI-only field
leaking through), a missing ``max_tokens``, roles other than user/assistant,
empty text blocks, a ``temperature`` above 1, ``tool_result`` blocks without a
matching ``tool_use`` in the previous message (and the reverse), a trailing
space in a final assistant message. With ``thinking`` on, the final assistant
message, when it holds ``tool_use`` blocks (a tool loop), must start with a
``thinking`` or ``redacted_thinking`` block; and a thinking block's signature
must be the one the fake issued for its text (``thinking_signature``), as real
signatures are checked.

``check_request`` returns the error message, or None when the request is valid.
"""

from __future__ import annotations

from typing import Any

from gatewise.testing.anthropic_reply import thinking_signature

__all__ = ["check_request"]

_MESSAGES_PARAMS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "service_tier",
        "container",
        "context_management",
        "mcp_servers",
        "inference_geo",
        "cache_control",
    }
)
_COUNT_PARAMS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "context_management",
        "mcp_servers",
    }
)
_BLOCK_TYPES = frozenset(
    {
        "text",
        "image",
        "document",
        "search_result",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
    }
)
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_CHOICE_TYPES = frozenset({"auto", "any", "tool", "none"})


def check_request(body: dict[str, Any], *, count_only: bool = False) -> str | None:
    """The real API's error message for an invalid ``/v1/messages`` body, else None."""
    allowed = _COUNT_PARAMS if count_only else _MESSAGES_PARAMS
    for key in body:
        if key not in allowed:
            return f"{key}: Extra inputs are not permitted"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    if not count_only:
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            return "max_tokens: Field required"
        if type(max_tokens) is not int or max_tokens < 1:
            return "max_tokens: Input should be greater than or equal to 1"
    return (
        _check_messages(body.get("messages"))
        or _check_thinking(body.get("thinking"), body["messages"])
        or _check_system(body.get("system"))
        or _check_sampling(body)
        or _check_tools(body.get("tools"), body.get("tool_choice"))
        or _check_output_config(body.get("output_config"))
    )


def _check_messages(messages: Any) -> str | None:
    if messages is None:
        return "messages: Field required"
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    if not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages.{i}: Input should be a valid dictionary"
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = message.get("content")
        final_assistant = role == "assistant" and i == len(messages) - 1
        if isinstance(content, str | list) and not content and not final_assistant:
            return (
                f"messages.{i}: all messages must have non-empty content except for "
                "the optional final assistant message"
            )
        if isinstance(content, list):
            for j, block in enumerate(content):
                error = _check_block(block, role, f"messages.{i}.content.{j}")
                if error:
                    return error
        elif not isinstance(content, str):
            return f"messages.{i}.content: Input should be a valid string or list"
        if final_assistant and _ends_with_space(content):
            return "messages: final assistant content cannot end with trailing whitespace"
    return _check_tool_pairs(messages)


def _check_block(block: Any, role: str, where: str) -> str | None:
    if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
        kind = block.get("type") if isinstance(block, dict) else None
        return f"{where}: Input tag {kind!r} found using 'type' does not match any expected tag"
    kind = block["type"]
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str) or not text:
            return "messages: text content blocks must be non-empty"
        if not text.strip():
            return "messages: text content blocks must contain non-whitespace text"
    elif kind == "image":
        return _check_image(block.get("source"), f"{where}.image.source")
    elif kind == "tool_use":
        if role != "assistant":
            return f"{where}: tool_use blocks may only appear in assistant messages"
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            return f"{where}.tool_use.id: Field required"
        if not isinstance(block.get("input"), dict):
            return f"{where}.tool_use.input: Input should be a valid dictionary"
    elif kind == "thinking":
        if role != "assistant":
            return f"{where}: thinking blocks may only appear in assistant messages"
        thinking, signature = block.get("thinking"), block.get("signature")
        if not isinstance(thinking, str):
            return f"{where}.thinking.thinking: Field required"
        if not isinstance(signature, str):
            return f"{where}.thinking.signature: Field required"
        if signature != thinking_signature(thinking):
            return f"{where}: Invalid `signature` in `thinking` block"
    elif kind == "redacted_thinking":
        if role != "assistant":
            return f"{where}: redacted_thinking blocks may only appear in assistant messages"
        data = block.get("data")
        if not isinstance(data, str) or not data:
            return f"{where}.redacted_thinking.data: Field required"
    elif kind == "tool_result":
        if role != "user":
            return f"{where}: tool_result blocks may only appear in user messages"
        if not isinstance(block.get("tool_use_id"), str):
            return f"{where}.tool_result.tool_use_id: Field required"
        inner = block.get("content")
        if isinstance(inner, list):
            for k, part in enumerate(inner):
                error = _check_block(part, role, f"{where}.tool_result.content.{k}")
                if error:
                    return error
    return None


def _check_image(source: Any, where: str) -> str | None:
    if not isinstance(source, dict):
        return f"{where}: Field required"
    if source.get("type") == "base64":
        if source.get("media_type") not in _IMAGE_TYPES:
            return (
                f"{where}.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                "'image/gif' or 'image/webp'"
            )
        if not isinstance(source.get("data"), str) or not source["data"]:
            return f"{where}.base64.data: Field required"
        return None
    if source.get("type") == "url":
        return None if isinstance(source.get("url"), str) else f"{where}.url.url: Field required"
    return f"{where}: Input tag {source.get('type')!r} found using 'type' does not match"


def _ends_with_space(content: Any) -> bool:
    if isinstance(content, str):
        return content != content.rstrip()
    last = content[-1] if content else None
    if isinstance(last, dict) and last.get("type") == "text":
        text = last.get("text")
        return isinstance(text, str) and text != text.rstrip()
    return False


def _ids(content: Any, kind: str, key: str) -> list[str]:
    if not isinstance(content, list):
        return []
    return [b[key] for b in content if isinstance(b, dict) and b.get("type") == kind]


def _check_tool_pairs(messages: list[Any]) -> str | None:
    """Every tool_use is answered in the next (user) message, every result answers one."""
    for i, message in enumerate(messages):
        content = message["content"]
        results = _ids(content, "tool_result", "tool_use_id")
        if results:
            previous = messages[i - 1] if i else None
            asked = (
                _ids(previous["content"], "tool_use", "id")
                if previous and previous["role"] == "assistant"
                else []
            )
            for j, result_id in enumerate(results):
                if result_id not in asked:
                    return (
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {result_id}. Each `tool_result` block must have "
                        "a corresponding `tool_use` block in the previous message."
                    )
        uses = _ids(content, "tool_use", "id")
        if uses and i + 1 < len(messages):
            answered = _ids(messages[i + 1]["content"], "tool_result", "tool_use_id")
            missing = [u for u in uses if u not in answered]
            if missing:
                return (
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                    "a corresponding `tool_result` block in the next message."
                )
    return None


_THINKING_ON = frozenset({"enabled", "adaptive"})
_THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_THINKING_FIRST = (
    "When `thinking` is enabled, a final `assistant` message must start with a thinking "
    "block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We "
    "recommend you include thinking blocks from previous turns. To avoid this requirement, "
    "disable `thinking`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)


def _check_thinking(thinking: Any, messages: list[Any]) -> str | None:
    """With thinking on, the last assistant turn of a tool loop opens with thinking."""
    if not isinstance(thinking, dict) or thinking.get("type") not in _THINKING_ON:
        return None
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if message["role"] != "assistant":
            continue
        content = message["content"]
        if not _ids(content, "tool_use", "id"):
            return None
        first = content[0].get("type")
        if first in _THINKING_BLOCKS:
            return None
        return (
            f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, "
            f"but found `{first}`. {_THINKING_FIRST}"
        )
    return None


def _check_system(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return None
    if not isinstance(system, list):
        return "system: Input should be a valid string or list"
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            return f"system.{i}: Input should be a text block"
        if not isinstance(block.get("text"), str) or not block["text"]:
            return "system: text content blocks must be non-empty"
    return None


def _check_sampling(body: dict[str, Any]) -> str | None:
    temperature = body.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, int | float):
            return "temperature: Input should be a valid number"
        if temperature > 1:
            return "temperature: Input should be less than or equal to 1"
        if temperature < 0:
            return "temperature: Input should be greater than or equal to 0"
    stop = body.get("stop_sequences")
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(s, str) for s in stop)
    ):
        return "stop_sequences: Input should be a valid list of strings"
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            return "metadata: Input should be a valid dictionary"
        for key in metadata:
            if key != "user_id":
                return f"metadata.{key}: Extra inputs are not permitted"
    return None


def _check_tools(tools: Any, choice: Any) -> str | None:
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                return f"tools.{i}.custom.name: Field required"
            if "type" not in tool or tool["type"] == "custom":
                schema = tool.get("input_schema")
                if not isinstance(schema, dict):
                    return f"tools.{i}.custom.input_schema: Field required"
                if schema.get("type") != "object":
                    return f"tools.{i}.custom.input_schema.type: Input should be 'object'"
            names.append(tool["name"])
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in _CHOICE_TYPES:
        return "tool_choice: Input tag found using 'type' does not match any of the expected tags"
    if not names:
        return "tool_choice: tool_choice may only be specified while providing tools."
    if choice["type"] == "tool" and choice.get("name") not in names:
        return f"tool_choice.tool.name: Tool '{choice.get('name')}' not found in provided tools"
    if choice["type"] == "none" and "disable_parallel_tool_use" in choice:
        return "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted"
    return None


def _check_output_config(config: Any) -> str | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        return "output_config: Input should be a valid dictionary"
    fmt = config.get("format")
    if fmt is not None and (
        not isinstance(fmt, dict)
        or fmt.get("type") != "json_schema"
        or not isinstance(fmt.get("schema"), dict)
    ):
        return "output_config.format: expected {'type': 'json_schema', 'schema': {...}}"
    effort = config.get("effort")
    if effort is not None and effort not in ("low", "medium", "high", "xhigh", "max"):
        return "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
    return None

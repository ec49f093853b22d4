"""Canonical chat request -> the body of Gemini's ``generateContent``.

- system and developer messages -> ``systemInstruction`` (one text part each, in order);
- user -> role ``user``, assistant -> role ``model``; empty messages are left out
  (Gemini rejects empty parts);
- images: ``data:`` URLs -> ``inlineData``; http(s)/gs URLs -> ``fileData`` with the
  media type guessed from the file name (refused when it cannot be told); audio
  (``input_audio``) and ``file`` parts with data -> ``inlineData``;
- assistant ``tool_calls`` -> ``functionCall`` parts; tool messages -> ``functionResponse``
  parts (the function name is looked up from the earlier call's id; the content is
  parsed when it is a JSON object, else wrapped as ``{"content": text}``), consecutive
  tool results in one turn, as Gemini expects for parallel calls;
- tools -> ``functionDeclarations`` (schemas cleaned by ``gemini_schema``),
  ``tool_choice`` -> ``toolConfig.functionCallingConfig``;
- sampling and limits -> ``generationConfig``; ``response_format`` -> ``responseMimeType``
  (+ ``responseSchema``).

OpenAI-only fields without a Gemini counterpart (``user``, ``parallel_tool_calls``,
``logit_bias``, ``store``, ``metadata`` ...) are dropped. Gemini-only settings pass
through ``extra`` (see ``_EXTRA_BODY`` and ``_EXTRA_GENERATION``).
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from gatewise.core.errors import InvalidRequestError
from gatewise.core.types import ChatRequest, JSONObject, Message
from gatewise.formats.gemini import signature_of
from gatewise.formats.openai import check_json_depth
from gatewise.providers.gemini_schema import clean_schema, parameters_schema

# extra (top-level request field) -> Gemini request field.
_EXTRA_BODY = {
    "safetySettings": "safetySettings",
    "safety_settings": "safetySettings",
    "cachedContent": "cachedContent",
    "cached_content": "cachedContent",
}
# extra (top-level request field) -> generationConfig field.
_EXTRA_GENERATION = {
    "top_k": "topK",
    "topK": "topK",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "thinkingConfig": "thinkingConfig",
    "thinking_config": "thinkingConfig",
}
# reasoning_effort -> thinkingBudget (the values Google's own OpenAI-compatible layer uses).
_THINKING_BUDGETS = {"none": 0, "minimal": 128, "low": 1024, "medium": 8192, "high": 24576}
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
_REMOTE_SCHEMES = ("https://", "http://", "gs://")


def chat_body(request: ChatRequest) -> bytes:
    """The JSON body for ``models/{model}:generateContent`` (and its streamed twin)."""
    contents, system = translate_messages(request.messages)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        declarations = [function_declaration(tool, i) for i, tool in enumerate(request.tools)]
        config, declarations = tool_config(request.tool_choice, declarations)
        body["tools"] = [{"functionDeclarations": declarations}]
        if config is not None:
            body["toolConfig"] = {"functionCallingConfig": config}
    generation = generation_config(request)
    for key, value in request.extra.items():
        if key in _EXTRA_BODY:
            body[_EXTRA_BODY[key]] = value
    if generation:
        body["generationConfig"] = generation
    return orjson.dumps(body)


# --- messages ---------------------------------------------------------------------------


def translate_messages(messages: list[Message]) -> tuple[list[JSONObject], list[JSONObject]]:
    """(contents, systemInstruction parts) for the conversation."""
    contents: list[JSONObject] = []
    system: list[JSONObject] = []
    names: dict[str, str] = {}  # tool-call id -> function name
    results: list[JSONObject] | None = None  # parts of the tool-result turn being built
    for i, message in enumerate(messages):
        role = message.role
        if role == "system" or role == "developer":
            text = message.text()
            if text:
                system.append({"text": text})
            continue
        if role == "tool" or role == "function":
            part = _function_response(message, i, names)
            if results is None:
                results = []
                contents.append({"role": "user", "parts": results})
            results.append(part)
            continue
        results = None
        if role == "assistant":
            parts = _assistant_parts(message, i, names)
            gemini_role = "model"
        else:
            parts = _user_parts(message.content, i)
            gemini_role = "user"
        if parts:
            contents.append({"role": gemini_role, "parts": parts})
    if not contents:
        raise InvalidRequestError(
            "Invalid 'messages': Gemini needs at least one user or assistant message "
            "with content besides system messages.",
            param="messages",
        )
    return contents, system


def _user_parts(content: str | list[JSONObject] | None, i: int) -> list[JSONObject]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[JSONObject] = []
    for j, part in enumerate(content or ()):
        kind = part.get("type")
        where = f"messages[{i}].content[{j}]"
        if kind == "text":
            text = part.get("text")
            if isinstance(text, str) and text:
                parts.append({"text": text})
        elif kind == "image_url":
            parts.append(_image_part(part.get("image_url"), where))
        elif kind == "input_audio":
            parts.append(_audio_part(part.get("input_audio"), where))
        elif kind == "file":
            parts.append(_file_part(part.get("file"), where))
        else:
            raise InvalidRequestError(
                f"Invalid '{where}.type': content parts of type {kind!r} are not supported "
                "by the Gemini provider.",
                param=f"{where}.type",
            )
    return parts


def _assistant_parts(message: Message, i: int, names: dict[str, str]) -> list[JSONObject]:
    content = message.content
    parts: list[JSONObject] = []
    if isinstance(content, str):
        if content:
            parts.append({"text": content})
    elif content:
        parts.extend(
            {"text": p["text"]} for p in content if p.get("type") == "text" and p.get("text")
        )
    for j, call in enumerate(message.tool_calls or ()):
        name = call.function.name or ""
        names[call.id] = name
        part: JSONObject = {
            "functionCall": {"name": name, "args": _arguments(call.function.arguments, i, j)}
        }
        signature = signature_of(call.id)
        if signature is not None:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _arguments(arguments: str | None, i: int, j: int) -> JSONObject:
    if not arguments or arguments.isspace():
        return {}
    param = f"messages[{i}].tool_calls[{j}].function.arguments"
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(f"Invalid '{param}': not valid JSON.", param=param) from None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"Invalid '{param}': must be a JSON object.", param=param)
    check_json_depth(value, param)  # it is encoded again (orjson stops at 254 levels)
    return value


def _function_response(message: Message, i: int, names: dict[str, str]) -> JSONObject:
    call_id = message.tool_call_id
    name = names.get(call_id) if call_id is not None else None
    if name is None:
        name = message.name
    if not name:
        param = f"messages[{i}].tool_call_id"
        raise InvalidRequestError(
            f"Invalid '{param}': no earlier assistant tool call has the id {call_id!r} "
            "(Gemini needs the function's name for its result).",
            param=param,
        )
    text = message.text()
    response: Any = None
    if text.startswith("{"):
        try:
            response = orjson.loads(text)
        except orjson.JSONDecodeError:
            response = None
    if not isinstance(response, dict):
        response = {"content": text}
    return {"functionResponse": {"name": name, "response": response}}


# --- media --------------------------------------------------------------------------------


def _image_part(image: Any, where: str) -> JSONObject:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(
            f"Invalid '{where}.image_url': a URL is required.", param=f"{where}.image_url"
        )
    if url.startswith("data:"):
        return {"inlineData": _data_url(url, f"{where}.image_url.url")}
    return {"fileData": _remote_file(url, f"{where}.image_url.url")}


def _audio_part(audio: Any, where: str) -> JSONObject:
    param = f"{where}.input_audio"
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
        raise InvalidRequestError(f"Invalid '{param}': 'data' is required.", param=param)
    mime = _AUDIO_TYPES.get(audio.get("format", ""))
    if mime is None:
        raise InvalidRequestError(
            f"Invalid '{param}.format': use 'wav' or 'mp3'.", param=f"{param}.format"
        )
    return {"inlineData": {"mimeType": mime, "data": audio["data"]}}


def _file_part(file: Any, where: str) -> JSONObject:
    param = f"{where}.file"
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str) or not data:
        raise InvalidRequestError(
            f"Invalid '{param}': the Gemini provider needs 'file_data' (file ids of "
            "another provider cannot be used).",
            param=param,
        )
    if data.startswith("data:"):
        return {"inlineData": _data_url(data, f"{param}.file_data")}
    filename = file.get("filename") if isinstance(file, dict) else None
    mime = mimetypes.guess_type(filename)[0] if isinstance(filename, str) else None
    if mime is None:
        raise InvalidRequestError(
            f"Invalid '{param}': send file_data as a data: URL, or give a filename "
            "that tells its media type.",
            param=param,
        )
    return {"inlineData": {"mimeType": mime, "data": data}}


def _data_url(url: str, param: str) -> JSONObject:
    header, comma, data = url[5:].partition(",")
    mime = header.split(";", 1)[0]
    if not comma or not header.endswith(";base64") or not mime or not data:
        raise InvalidRequestError(
            f"Invalid '{param}': expected a base64 data URL (data:<type>;base64,<data>).",
            param=param,
        )
    return {"mimeType": mime, "data": data}


def _remote_file(url: str, param: str) -> JSONObject:
    if not url.startswith(_REMOTE_SCHEMES):
        raise InvalidRequestError(f"Invalid '{param}': use an https:// or data: URL.", param=param)
    mime = mimetypes.guess_type(url.split("?", 1)[0].split("#", 1)[0])[0]
    if mime is None:
        raise InvalidRequestError(
            f"Invalid '{param}': the media type of {url[:120]!r} cannot be told from its "
            "name; Gemini needs one, so send the file as a data: URL instead.",
            param=param,
        )
    return {"mimeType": mime, "fileUri": url}


# --- tools ----------------------------------------------------------------------------------


def function_declaration(tool: JSONObject, i: int) -> JSONObject:
    function = tool.get("function")
    if tool.get("type", "function") != "function" or not isinstance(function, dict):
        param = f"tools[{i}].type"
        raise InvalidRequestError(
            f"Invalid '{param}': the Gemini provider supports function tools only.", param=param
        )
    name = function.get("name")
    if not isinstance(name, str) or not name:
        param = f"tools[{i}].function.name"
        raise InvalidRequestError(f"Missing required parameter: '{param}'.", param=param)
    declaration: JSONObject = {"name": name}
    if isinstance(function.get("description"), str):
        declaration["description"] = function["description"]
    parameters = parameters_schema(function.get("parameters"), f"tools[{i}].function.parameters")
    if parameters is not None:
        declaration["parameters"] = parameters
    return declaration


def tool_config(
    choice: str | JSONObject | None, declarations: list[JSONObject]
) -> tuple[JSONObject | None, list[JSONObject]]:
    """(functionCallingConfig, declarations): ``allowed_tools`` in auto mode narrows the
    declarations, since Gemini takes ``allowedFunctionNames`` only in ANY mode."""
    if choice is None or choice == "auto":
        return ({"mode": "AUTO"} if choice else None), declarations
    if choice == "none":
        return {"mode": "NONE"}, declarations
    if choice == "required":
        return {"mode": "ANY"}, declarations
    if isinstance(choice, dict):
        known = {d["name"] for d in declarations}
        function = choice.get("function")
        if choice.get("type") == "function" and isinstance(function, dict):
            names = [_known_name(function.get("name"), known, "tool_choice.function.name")]
            return {"mode": "ANY", "allowedFunctionNames": names}, declarations
        allowed = choice.get("allowed_tools")
        if choice.get("type") == "allowed_tools" and isinstance(allowed, dict):
            names = [
                _known_name(
                    (t.get("function") or {}).get("name"), known, "tool_choice.allowed_tools"
                )
                for t in allowed.get("tools") or ()
                if isinstance(t, dict)
            ]
            if allowed.get("mode") == "required":
                return {"mode": "ANY", "allowedFunctionNames": names}, declarations
            return {"mode": "AUTO"}, [d for d in declarations if d["name"] in names]
    raise InvalidRequestError(
        f"Invalid 'tool_choice': {choice!r} is not supported by the Gemini provider.",
        param="tool_choice",
    )


def _known_name(name: Any, known: set[str], param: str) -> str:
    if not isinstance(name, str) or name not in known:
        raise InvalidRequestError(
            f"Invalid '{param}': {name!r} is not one of the declared tools.", param=param
        )
    return name


# --- generationConfig ----------------------------------------------------------------------


def generation_config(request: ChatRequest) -> JSONObject:
    config: JSONObject = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    limit = request.output_token_limit
    if limit:
        config["maxOutputTokens"] = limit
    stop = request.stop
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else stop
    if request.n is not None:
        config["candidateCount"] = request.n
    if request.seed is not None:
        config["seed"] = request.seed
    if request.response_format is not None:
        _response_format(request.response_format, config)
    extra = request.extra
    if extra:
        for key, value in extra.items():
            if key in _EXTRA_GENERATION:
                config[_EXTRA_GENERATION[key]] = value
        effort = extra.get("reasoning_effort")
        if effort is not None:
            if effort not in _THINKING_BUDGETS:
                raise InvalidRequestError(
                    f"Invalid 'reasoning_effort': {effort!r}; use one of "
                    f"{', '.join(_THINKING_BUDGETS)}.",
                    param="reasoning_effort",
                )
            config["thinkingConfig"] = {"thinkingBudget": _THINKING_BUDGETS[effort]}
        overrides = extra.get("generationConfig", extra.get("generation_config"))
        if isinstance(overrides, dict):
            config.update(overrides)
    return config


def _response_format(response_format: JSONObject, config: JSONObject) -> None:
    kind = response_format.get("type")
    if kind == "text":
        return
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
        return
    if kind == "json_schema":
        config["responseMimeType"] = "application/json"
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is not None:
            config["responseSchema"] = clean_schema(schema, "response_format.json_schema.schema")
        return
    raise InvalidRequestError(
        f"Invalid 'response_format.type': {kind!r} is not supported by the Gemini provider.",
        param="response_format.type",
    )

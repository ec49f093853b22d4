"""Request validation at the fake Gemini upstream, with Google's 400 messages.

The real API parses requests as protobuf JSON: an unknown field anywhere (a JSON
Schema keyword Gemini lacks, an OpenAI parameter name) is a 400
``Invalid JSON payload received. Unknown name "x" at 'path': Cannot find field.``,
and contents must be non-empty with roles ``user`` / ``model``. Checking the same
here makes tests fail where the real API would.
"""

from __future__ import annotations

from typing import Any

from gatewise.formats.gemini import SCHEMA_KEYS

__all__ = ["embed_problem", "request_problem"]

_REQUEST_FIELDS = frozenset(
    {
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "safetySettings",
        "cachedContent",
        "model",
    }
)
_PART_DATA = frozenset(
    {
        "text",
        "inlineData",
        "fileData",
        "functionCall",
        "functionResponse",
        "executableCode",
        "codeExecutionResult",
    }
)
_PART_FIELDS = _PART_DATA | {"thought", "thoughtSignature", "videoMetadata", "partMetadata"}
_GENERATION_FIELDS = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "enableEnhancedCivicAnswers",
        "speechConfig",
        "thinkingConfig",
        "mediaResolution",
    }
)
# Google accepts these documentation-only keys too (the gateway leaves them out).
_SCHEMA_FIELDS = SCHEMA_KEYS | {"title", "default", "example"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _unknown(name: str, where: str) -> str:
    at = f" at '{where}'" if where else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'


def _fields(obj: dict[str, Any], known: frozenset[str], where: str) -> str | None:
    for key in obj:
        if _camel(key) not in known:
            return _unknown(key, where)
    return None


def request_problem(body: dict[str, Any]) -> str | None:
    """Google's 400 message for a malformed ``generateContent`` body, or None."""
    problem = _fields(body, _REQUEST_FIELDS, "")
    if problem:
        return problem
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified\n"
    for i, content in enumerate(contents):
        problem = _content_problem(content, f"contents[{i}]")
        if problem:
            return problem
    system = body.get("systemInstruction", body.get("system_instruction"))
    if system is not None:
        problem = _content_problem(system, "system_instruction", role_required=False)
        if problem:
            return problem
    config = body.get("generationConfig", body.get("generation_config"))
    if isinstance(config, dict):
        problem = _fields(config, _GENERATION_FIELDS, "generation_config")
        if problem:
            return problem
        count = config.get("candidateCount")
        if count is not None and (not isinstance(count, int) or not 1 <= count <= 8):
            return "* GenerateContentRequest.generation_config.candidate_count: must be 1-8.\n"
        schema = config.get("responseSchema")
        if schema is not None:
            problem = _schema_problem(schema, "generation_config.response_schema")
            if problem:
                return problem
    for t, tool in enumerate(body.get("tools") or ()):
        for d, declaration in enumerate(tool.get("functionDeclarations") or ()):
            where = f"tools[{t}].function_declarations[{d}]"
            if not declaration.get("name"):
                return f"* GenerateContentRequest.{where}.name: Name cannot be empty.\n"
            params = declaration.get("parameters")
            if params is not None:
                problem = _schema_problem(params, f"{where}.parameters")
                if problem:
                    return problem
    return None


def _content_problem(content: Any, where: str, role_required: bool = True) -> str | None:
    if not isinstance(content, dict):
        return f"Invalid value at '{where}' (Content), not an object."
    role = content.get("role")
    if role is not None and role not in ("user", "model") and role_required:
        return "Please use a valid role: user, model."
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        return f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n"
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            return f"Invalid value at '{where}.parts[{j}]' (Part), not an object."
        problem = _fields(part, _PART_FIELDS, f"{where}.parts[{j}]")
        if problem:
            return problem
        data = [key for key in part if _camel(key) in _PART_DATA]
        if len(data) != 1:
            return f"* GenerateContentRequest.{where}.parts[{j}].data: required oneof field 'data' must have one initialized field\n"  # noqa: E501
        response = part.get("functionResponse")
        if response is not None and not isinstance(response.get("response"), dict):
            return f"Invalid value at '{where}.parts[{j}].function_response.response' (type.googleapis.com/google.protobuf.Struct), not an object."  # noqa: E501
    return None


def _schema_problem(schema: Any, where: str) -> str | None:
    if not isinstance(schema, dict):
        return f"Invalid value at '{where}' (Schema), not an object."
    problem = _fields(schema, _SCHEMA_FIELDS, where)
    if problem:
        return problem
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.upper() == "NULL"):
        return f"Invalid value at '{where}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), {kind!r}"  # noqa: E501
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, sub in properties.items():
            problem = _schema_problem(sub, f"{where}.properties[{name}].value")
            if problem:
                return problem
    if "items" in schema:
        problem = _schema_problem(schema["items"], f"{where}.items")
        if problem:
            return problem
    for k, branch in enumerate(schema.get("anyOf") or ()):
        problem = _schema_problem(branch, f"{where}.any_of[{k}]")
        if problem:
            return problem
    return None


def embed_problem(item: Any, model: str, where: str) -> str | None:
    """Google's 400 for one ``EmbedContentRequest`` of a batch addressed to ``model``."""
    if not isinstance(item, dict):
        return f"Invalid value at '{where}' (EmbedContentRequest), not an object."
    if item.get("model") != f"models/{model}":
        return (
            f"* BatchEmbedContentsRequest.{where}.model: Model names should match between "
            f"the requests and the batch (expected 'models/{model}', got {item.get('model')!r})\n"
        )
    content = item.get("content")
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        return f"* BatchEmbedContentsRequest.{where}.content: content is not specified\n"
    dimensions = item.get("outputDimensionality")
    if dimensions is not None and (not isinstance(dimensions, int) or dimensions < 1):
        return f"* BatchEmbedContentsRequest.{where}.output_dimensionality: must be positive.\n"
    return None

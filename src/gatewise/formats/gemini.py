"""Gemini (Developer API) wire format: typed response shapes and the mapping tables.

The provider (``providers/gemini*.py``: canonical -> Gemini upstream) and the
fake upstream (``testing/gemini_*.py``) share these facts; a future Gemini front
door would too. Source: the Gemini API reference (ai.google.dev/api/generate-content,
/api/embeddings).
Responses are decoded into msgspec structs (``rename="camel"``): decoding a
stream event this way costs a few microseconds and ignores fields we do not use.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gatewise.core.types import Usage

# Gemini finishReason -> OpenAI finish_reason. Anything else (OTHER, LANGUAGE,
# MALFORMED_FUNCTION_CALL, FINISH_REASON_UNSPECIFIED, new values) maps to ``stop``.
FINISH_REASONS: dict[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}

# HTTP status -> the google.rpc status name Google's error envelope carries.
GOOGLE_STATUS: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# The keys of Gemini's ``Schema`` (a subset of OpenAPI 3.0) that the gateway sends.
# ``title``, ``default`` and ``example`` are documentation only and were rejected by
# older API versions, so they are left out; everything else JSON Schema allows
# (additionalProperties, $schema, $ref, $defs, const, oneOf, allOf, not,
# exclusiveMinimum, multipleOf, patternProperties, examples ...) is rejected by Gemini
# with "Unknown name ... Cannot find field" and is dropped or converted.
SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "description",
        "nullable",
        "enum",
        "properties",
        "required",
        "propertyOrdering",
        "items",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "anyOf",
    }
)
# Formats the Developer API accepts, by type (others are rejected with a 400).
SCHEMA_FORMATS: dict[str, frozenset[str]] = {
    "string": frozenset({"enum", "date-time"}),
    "number": frozenset({"float", "double"}),
    "integer": frozenset({"int32", "int64"}),
}


def finish_reason(reason: str, has_tool_calls: bool) -> str:
    """The OpenAI finish_reason for a Gemini one (a STOP that called functions is tool_calls)."""
    mapped = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if mapped == "stop" and has_tool_calls else mapped


def model_path(model: str) -> str:
    """``models/{model}`` unless the name already is a resource path (tunedModels/...)."""
    return model if "/" in model else f"models/{model}"


# --- response shapes ------------------------------------------------------------------


class FunctionCallData(msgspec.Struct, rename="camel"):
    name: str = ""
    args: dict[str, Any] | None = None


class Part(msgspec.Struct, rename="camel", gc=False):
    text: str | None = None
    thought: bool = False
    thought_signature: str | None = None
    function_call: FunctionCallData | None = None


class Content(msgspec.Struct, rename="camel", gc=False):
    parts: list[Part] = msgspec.field(default_factory=list)
    role: str | None = None


class Candidate(msgspec.Struct, rename="camel", gc=False):
    content: Content | None = None
    finish_reason: str | None = None
    index: int | None = None


class PromptFeedback(msgspec.Struct, rename="camel", gc=False):
    block_reason: str | None = None


class UsageMetadata(msgspec.Struct, rename="camel", gc=False):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    total_token_count: int = 0
    cached_content_token_count: int = 0
    thoughts_token_count: int = 0
    tool_use_prompt_token_count: int = 0


class GenerateContentResponse(msgspec.Struct, rename="camel", gc=False):
    """One ``generateContent`` answer, or one ``streamGenerateContent`` event (a delta)."""

    candidates: list[Candidate] = msgspec.field(default_factory=list)
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None


class ContentEmbedding(msgspec.Struct):
    values: list[float] = msgspec.field(default_factory=list)


class BatchEmbedContentsResponse(msgspec.Struct):
    embeddings: list[ContentEmbedding] = msgspec.field(default_factory=list)


def usage_from_gemini(meta: UsageMetadata) -> Usage:
    """Canonical usage: thinking tokens count as completion, tool-use prompts as prompt."""
    prompt = meta.prompt_token_count + meta.tool_use_prompt_token_count
    completion = meta.candidates_token_count + meta.thoughts_token_count
    total = meta.total_token_count or prompt + completion
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        prompt_tokens_details=(
            {"cached_tokens": meta.cached_content_token_count}
            if meta.cached_content_token_count
            else None
        ),
        completion_tokens_details=(
            {"reasoning_tokens": meta.thoughts_token_count} if meta.thoughts_token_count else None
        ),
    )


# --- tool-call ids ----------------------------------------------------------------------
# Gemini's function calls carry no ids, so the gateway synthesises ``call_...`` ids. A
# Gemini 3 function call may carry a ``thoughtSignature`` that must come back with the
# call in the next turn, and OpenAI clients echo tool-call ids verbatim: so the signature
# rides in the id after this separator (as URL-safe base64, which Google also accepts).
SIGNATURE_SEPARATOR = "__ts_"
_TO_URLSAFE = str.maketrans("+/", "-_", "=")


def tool_call_id(base: str, signature: str | None) -> str:
    """A tool-call id carrying ``signature`` (if any) after ``base``."""
    if not signature:
        return base
    return base + SIGNATURE_SEPARATOR + signature.translate(_TO_URLSAFE)


def signature_of(call_id: str) -> str | None:
    """The thought signature a tool-call id carries, or None."""
    _, found, signature = call_id.partition(SIGNATURE_SEPARATOR)
    return signature if found and signature else None

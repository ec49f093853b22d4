"""Gemini API response bodies, in the real shapes (ai.google.dev, REST v1beta).

Pure functions from values to bytes; ``gemini_upstream`` decides when to send them.
Non-streamed bodies are pretty-printed as Google's are (two-space indent); stream
events are single-line JSON framed as ``data: ...\\r\\n\\r\\n`` (``alt=sse``) or as the
items of one JSON array (without ``alt=sse``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from gatewise.formats.gemini import GOOGLE_STATUS
from gatewise.testing.gemini_reply import GeminiReply
from gatewise.testing.openai_wire import split_text

__all__ = [
    "DEFAULT_MODELS",
    "error_body",
    "generate_response",
    "models_list",
    "status_error",
    "stream_events",
]

DEFAULT_MODELS = (
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-2.0-flash",
    "gemini-embedding-001",
    "text-embedding-004",
)
EMBEDDING_DIMENSIONS = {"gemini-embedding-001": 3072, "text-embedding-004": 768}
FILTER_REASONS = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"})
_PRETTY = orjson.OPT_INDENT_2
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"

INVALID_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
MISSING_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_STATUS_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    404: (
        "models/{model} is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods."
    ),
    429: (
        "You exceeded your current quota, please check your plan and billing details. "
        "For more information on this error, head to: "
        "https://ai.google.dev/gemini-api/docs/rate-limits."
    ),
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
_BLOCKED_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]


# --- errors -----------------------------------------------------------------------------


def error_body(
    status: int,
    message: str,
    details: list[dict[str, Any]] | None = None,
    status_name: str | None = None,
) -> bytes:
    """Google's envelope: ``{"error": {"code", "message", "status"[, "details"]}}``."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": status_name or GOOGLE_STATUS.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return orjson.dumps({"error": error}, option=_PRETTY)


def invalid_key_body() -> bytes:
    info = {
        "@type": _ERROR_INFO,
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }
    return error_body(400, INVALID_KEY_MESSAGE, [info])


def status_error(
    status: int,
    *,
    model: str,
    retry_after: float = 1.0,
    message: str | None = None,
    status_name: str | None = None,
) -> bytes:
    """The body the real API sends with ``status``; a 429 carries QuotaFailure and RetryInfo."""
    if message is None:
        template = _STATUS_MESSAGES.get(status, f"Upstream error {status}.")
        message = template.format(model=model)
    details: list[dict[str, Any]] | None = None
    if status == 429:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/"
                        "generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": "10",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{math.ceil(retry_after)}s",
            },
        ]
    return error_body(status, message, details, status_name)


# --- generateContent ----------------------------------------------------------------------


def usage_metadata(prompt: int, completion: int | None) -> dict[str, Any]:
    """``usageMetadata``; ``completion`` None for the interim events of a stream."""
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if completion is not None:
        usage["candidatesTokenCount"] = completion
    usage["totalTokenCount"] = prompt + (completion or 0)
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return usage


def _parts(reply: GeminiReply, text: str | None) -> list[dict[str, Any]]:
    if reply.calls:
        return [{"functionCall": {"name": name, "args": args}} for name, args in reply.calls]
    return [{"text": text if text is not None else reply.text or ""}]


def _candidate(
    index: int, parts: list[dict[str, Any]] | None, finish: str | None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {}
    if parts is not None:
        candidate["content"] = {"parts": parts, "role": "model"}
    if finish is not None:
        candidate["finishReason"] = finish
        if finish in FILTER_REASONS:
            candidate["safetyRatings"] = _BLOCKED_RATINGS
    candidate["index"] = index
    return candidate


def _envelope(
    candidates: list[dict[str, Any]] | None,
    usage: dict[str, Any],
    model: str,
    response_id: str,
    block_reason: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if candidates is not None:
        body["candidates"] = candidates
    if block_reason is not None:
        body["promptFeedback"] = {"blockReason": block_reason, "safetyRatings": _BLOCKED_RATINGS}
    body["usageMetadata"] = usage
    body["modelVersion"] = model
    body["responseId"] = response_id
    return body


def generate_response(
    reply: GeminiReply,
    n: int,
    model: str,
    response_id: str,
    block_reason: str | None = None,
) -> bytes:
    """A whole ``GenerateContentResponse`` (pretty-printed, as Google sends it)."""
    if block_reason is not None:
        usage = usage_metadata(reply.prompt_tokens, None)
        body = _envelope(None, usage, model, response_id, block_reason)
        return orjson.dumps(body, option=_PRETTY)
    filtered = reply.finish_reason in FILTER_REASONS
    parts = None if filtered else _parts(reply, None)
    candidates = [_candidate(i, parts, reply.finish_reason) for i in range(n)]
    completion = 0 if filtered else reply.completion_tokens * n
    usage = usage_metadata(reply.prompt_tokens, completion)
    return orjson.dumps(_envelope(candidates, usage, model, response_id), option=_PRETTY)


def stream_events(
    reply: GeminiReply,
    n: int,
    model: str,
    response_id: str,
    chunks: int,
    block_reason: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The events of ``streamGenerateContent``: text in ``chunks`` pieces, the finish reason
    and the full usage on the last one; function calls whole in one event."""
    prompt = reply.prompt_tokens
    if block_reason is not None:
        yield _envelope(None, usage_metadata(prompt, None), model, response_id, block_reason)
        return
    finish = reply.finish_reason
    final_usage = usage_metadata(prompt, reply.completion_tokens * n)
    if finish in FILTER_REASONS:
        candidates = [_candidate(i, None, finish) for i in range(n)]
        final_usage = usage_metadata(prompt, 0)
        yield _envelope(candidates, final_usage, model, response_id)
        return
    if reply.calls:
        parts = _parts(reply, None)
        candidates = [_candidate(i, parts, finish) for i in range(n)]
        yield _envelope(candidates, final_usage, model, response_id)
        return
    pieces = split_text(reply.text or "", chunks) if reply.text else [""]
    interim = usage_metadata(prompt, None)
    last = len(pieces) - 1
    for k, piece in enumerate(pieces):
        done = k == last
        candidates = [_candidate(i, [{"text": piece}], finish if done else None) for i in range(n)]
        yield _envelope(candidates, final_usage if done else interim, model, response_id)


def sse_frames(events: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for event in events:
        yield b"data: " + orjson.dumps(event) + b"\r\n\r\n"


def array_frames(events: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """The JSON-array form (no ``alt=sse``): ``[{...}``, ``,\\r\\n{...}``, ..., ``]``."""
    first = True
    for event in events:
        yield (b"[" if first else b"\n,\r\n") + orjson.dumps(event, option=_PRETTY)
        first = False
    yield b"]" if not first else b"[]"


GARBAGE_BODY = b"<html><body><h1>502 upstream garbage</h1>not json {{{</body></html>"
GARBAGE_EVENTS = (
    b"data: this is not json {{{\r\n\r\n",
    b'data: {"candidates": [\r\n\r\n',
    b"data: <html>\r\n\r\n",
)


# --- models and embeddings ------------------------------------------------------------------


def model_object(model: str) -> dict[str, Any]:
    embedding = model in EMBEDDING_DIMENSIONS or "embedding" in model
    if embedding:
        methods = ["embedContent", "batchEmbedContents"]
    else:
        methods = ["generateContent", "streamGenerateContent", "countTokens"]
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": model.replace("-", " ").title(),
        "description": f"Fake {model}",
        "inputTokenLimit": 2048 if embedding else 1048576,
        "outputTokenLimit": 1 if embedding else 65536,
        "supportedGenerationMethods": methods,
    }


def models_list(models: Sequence[str]) -> bytes:
    return orjson.dumps({"models": [model_object(m) for m in models]}, option=_PRETTY)


def batch_embeddings(vectors: Sequence[Any]) -> bytes:
    return orjson.dumps({"embeddings": [{"values": v} for v in vectors]})


def single_embedding(vector: Any) -> bytes:
    return orjson.dumps({"embedding": {"values": vector}})


def model_json(model: str) -> bytes:
    return orjson.dumps(model_object(model), option=_PRETTY)

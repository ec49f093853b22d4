"""OpenAI (and Azure OpenAI) response bodies, byte for byte in the real shapes.

Pure functions from values to bytes; the server module decides *when* to send
them. Constant parts are pre-encoded so the hot path does one small
``orjson.dumps`` per SSE event.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from gatewise.testing.openai_reply import Reply

__all__ = [
    "AZURE_NOT_FOUND",
    "DONE_EVENT",
    "ChunkEncoder",
    "chat_completion",
    "chat_completion_tail",
    "error_body",
    "models_list",
    "status_error",
    "usage",
]

SYSTEM_FINGERPRINT = "fp_fake0001"
DONE_EVENT = b"data: [DONE]\n\n"
AZURE_NOT_FOUND = b'{"error":{"code":"404","message":"Resource not found"}}'
INVALID_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please contact "
    "us through our help center at help.openai.com.)"
)
MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field "
    "(with blank username) if you're accessing the API from your browser and are prompted for "
    "a username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
# status -> (message, type, code); "{model}" and "{retry}" are filled in.
_STATUS_ERRORS: dict[int, tuple[str, str, Any]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: (
        "Incorrect API key provided: {key}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    403: (
        "Country, region, or territory not supported",
        "request_forbidden",
        "unsupported_country_region_territory",
    ),
    404: (
        "The model '{model}' does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    408: ("Request timed out.", "timeout", None),
    409: ("The request conflicted with another request.", "invalid_request_error", "conflict"),
    422: ("Unprocessable entity.", "invalid_request_error", None),
    429: (
        "Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
        "Limit 60, Used 60, Requested 1. Please try again in {retry}s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error processing your request. Sorry about that! You can retry your "
        "request, or contact us through our help center at help.openai.com if you keep seeing "
        "this error.",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "cf_bad_gateway", 502),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    504: ("Gateway timeout.", "cf_gateway_timeout", 504),
}


def error_body(message: str, type_: str, param: str | None = None, code: Any = None) -> bytes:
    """OpenAI's error envelope: all four keys always present."""
    return orjson.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    )


def status_error(
    status: int,
    *,
    model: str = "gpt-4o-mini",
    retry_after: float = 1.0,
    key: str = "",
    message: str | None = None,
    type_: str | None = None,
    code: Any = None,
) -> bytes:
    """The body the real API sends with ``status`` (overridable field by field)."""
    template, default_type, default_code = _STATUS_ERRORS.get(
        status,
        (
            f"Upstream error {status}.",
            "server_error" if status >= 500 else "invalid_request_error",
            None,
        ),
    )
    if message is None:
        message = template.format(model=model, retry=f"{retry_after:g}", key=key)
    return error_body(message, type_ or default_type, None, code or default_code)


_USAGE = (
    b'{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,'
    b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
    b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}'
)


def usage(prompt_tokens: int, completion_tokens: int) -> bytes:
    """OpenAI's ``usage`` object (``CompletionUsage``) with its ``*_details``."""
    return _USAGE % (prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)


_SAFE = {"filtered": False, "severity": "safe"}
AZURE_CONTENT_FILTER: dict[str, Any] = {
    "hate": _SAFE,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
}
AZURE_PROMPT_FILTER: list[dict[str, Any]] = [
    {"prompt_index": 0, "content_filter_results": AZURE_CONTENT_FILTER}
]
_AZURE_CHOICE_EXTRA = b',"content_filter_results":' + orjson.dumps(AZURE_CONTENT_FILTER)
_AZURE_COMPLETION_EXTRA = b',"prompt_filter_results":' + orjson.dumps(AZURE_PROMPT_FILTER)
_TEXT_MESSAGE = b'{"role":"assistant","content":%s,"refusal":null,"annotations":[]}'
_CHOICE = b'{"index":%d,"message":%s,"logprobs":null,"finish_reason":"%s"%s}'
_COMPLETION_HEAD = b'{"id":"%s","object":"chat.completion","created":%d%s'
_COMPLETION_TAIL = (
    b',"model":%s,"choices":[%s],"usage":%s,"service_tier":"default","system_fingerprint":"'
    + SYSTEM_FINGERPRINT.encode()
    + b'"%s}'
)


def _tool_message(reply: Reply, call_id: str) -> bytes:
    tool_call = {
        "id": call_id,
        "type": "function",
        "function": {"name": reply.tool_name, "arguments": reply.tool_arguments},
    }
    return orjson.dumps(
        {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [tool_call],
            "annotations": [],
        }
    )


def chat_completion(completion_id: str, created: int, tail: bytes) -> bytes:
    """A non-streamed ``chat.completion``: the per-request id and time, then ``tail``."""
    return _COMPLETION_HEAD % (completion_id.encode(), created, tail)


def chat_completion_tail(model: str, reply: Reply, n: int, azure: bool, call_prefix: str) -> bytes:
    """Everything after ``"created"``: ``n`` identical choices, usage, fingerprint.

    Split from the head so the fake can reuse it for identical requests (tool calls
    excepted: their ``call_prefix`` ids must differ per response).
    """
    finish = reply.finish_reason.encode()
    extra = _AZURE_CHOICE_EXTRA if azure else b""
    if reply.tool_name is None:
        message = _TEXT_MESSAGE % orjson.dumps(reply.content)
        choices = b",".join([_CHOICE % (i, message, finish, extra) for i in range(n)])
    else:
        choices = b",".join(
            [
                _CHOICE % (i, _tool_message(reply, f"{call_prefix}{i}"), finish, extra)
                for i in range(n)
            ]
        )
    return _COMPLETION_TAIL % (
        orjson.dumps(model),
        choices,
        usage(reply.prompt_tokens, reply.completion_tokens * n),
        _AZURE_COMPLETION_EXTRA if azure else b"",
    )


def split_text(text: str, pieces: int) -> list[str]:
    """Cut text into ``pieces`` nearly equal parts (fewer if the text is shorter)."""
    size = len(text)
    pieces = max(1, min(pieces, size))
    return [text[i * size // pieces : (i + 1) * size // pieces] for i in range(pieces)]


class ChunkEncoder:
    """Encodes ``chat.completion.chunk`` SSE events around a pre-encoded envelope."""

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        head = orjson.dumps(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": SYSTEM_FINGERPRINT,
            }
        )
        self.completion_id = completion_id
        self._prefix = b"data: " + head[:-1] + b',"choices":['
        self._tail = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"
        self.include_usage = include_usage

    def event(self, index: int, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._prefix + orjson.dumps(choice) + self._tail

    def usage_event(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        return self._prefix + b'],"usage":' + usage(prompt_tokens, completion_tokens) + b"}\n\n"

    def events(
        self,
        reply: Reply,
        n: int,
        chunks: int,
        azure: bool,
        pieces: Sequence[str] | None = None,
    ) -> Iterator[bytes]:
        """Every event of the stream, ``[DONE]`` included, choice after choice; ``pieces``
        are the text's deltas as given (else it is cut into ``chunks`` nearly equal ones)."""
        if azure:
            yield _AZURE_PROMPT_FILTER_EVENT
        for index in range(n):
            if reply.tool_name is not None:
                yield self.event(
                    index,
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": f"call_{self.completion_id[9:]}{index}",
                                "type": "function",
                                "function": {"name": reply.tool_name, "arguments": ""},
                            }
                        ],
                        "refusal": None,
                    },
                )
                for piece in pieces or split_text(reply.tool_arguments or "", chunks):
                    yield self.event(
                        index, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                    )
            else:
                yield self.event(index, {"role": "assistant", "content": "", "refusal": None})
                for piece in pieces or split_text(reply.content or "", chunks):
                    if piece:
                        yield self.event(index, {"content": piece})
            yield self.event(index, {}, reply.finish_reason)
        if self.include_usage:
            yield self.usage_event(reply.prompt_tokens, reply.completion_tokens * n)
        yield DONE_EVENT


_AZURE_PROMPT_FILTER_EVENT = (
    b"data: "
    + orjson.dumps(
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": AZURE_PROMPT_FILTER,
        }
    )
    + b"\n\n"
)

GARBAGE_BODY = b"<html><body><h1>502 upstream garbage</h1>not json {{{</body></html>"
GARBAGE_EVENTS = (
    b"data: this is not json {{{\n\n",
    b'data: {"id": "chatcmpl-broken", "choices": [\n\n',
    b": a comment line\n\ndata: <html>\n\n",
    DONE_EVENT,
)


def model_object(model_id: str, created: int = 1686935002) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": "system",
        "shutdown_date": None,
    }


def models_list(models: Sequence[str]) -> bytes:
    return orjson.dumps({"object": "list", "data": [model_object(m) for m in models]})


def embeddings_list(vectors: list[list[float] | str], model: str, prompt_tokens: int) -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ],
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )

"""OpenAI wire format <-> canonical types.

Shared by the OpenAI front door (client JSON in, OpenAI JSON out) and the
OpenAI-family providers (canonical out, upstream JSON in): the canonical model
is OpenAI's chat semantics, so both directions are thin.

Unknown fields are kept: a top-level or per-message field the canonical types
do not model lands in ``extra`` on the way in and is merged back on the way out.
"""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

import msgspec
import orjson

from gatewise.core.errors import InvalidRequestError, UpstreamProtocolError
from gatewise.core.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    JSONObject,
    Message,
    attach_raw,
    raw_of,
)

_CHAT_FIELDS = frozenset(f.name for f in msgspec.structs.fields(ChatRequest)) - {"extra"}
_MESSAGE_FIELDS = frozenset(f.name for f in msgspec.structs.fields(Message)) - {"extra"}
_EMBEDDING_FIELDS = frozenset(f.name for f in msgspec.structs.fields(EmbeddingRequest)) - {"extra"}

_response_decoder = msgspec.json.Decoder(ChatResponse)
_chunk_decoder = msgspec.json.Decoder(ChatChunk)
_embedding_decoder = msgspec.json.Decoder(EmbeddingResponse)
_encoder = msgspec.json.Encoder()

#: The deepest nesting of arrays and objects a request body may have (the body itself is
#: level 1). Ordinary requests nest 5-8 levels, a tool's JSON schema a few more; orjson
#: refuses to encode beyond 254 levels and msgspec and the standard library recurse in
#: Python (about 1,000), so a deeper body would pass the parser and break while re-encoding.
MAX_JSON_DEPTH = 64
#: Every byte but ``[`` and ``{``: deleting them counts the openers in one C-level pass.
_NOT_OPENERS = bytes(sorted(set(range(256)) - set(b"[{")))

_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`")


# --- client requests -> canonical ------------------------------------------------


def parse_json_object(body: bytes) -> JSONObject:
    """Parse a request body that must be a JSON object, or raise a 400 that says why."""
    if not body:
        raise InvalidRequestError(
            "The request body is empty; send a JSON object (Content-Type: application/json)."
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"We could not parse the JSON body of your request: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})."
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequestError(f"The request body must be a JSON object, not {json_kind(data)}.")
    # Nesting can be no deeper than the count of openers (brackets in strings only add to
    # it): nearly every body has fewer, and the exact walk runs only for the others.
    if len(body.translate(None, _NOT_OPENERS)) > MAX_JSON_DEPTH:
        check_json_depth(data)
    return data


def check_json_depth(value: Any, param: str = "") -> None:
    """Refuse a parsed JSON value (a request body, or JSON text found in one, with
    ``param`` its field) nested deeper than ``MAX_JSON_DEPTH``, with a 400 naming the
    field (its path four levels deeper at most: ``tools[0].function.parameters``)."""
    kind = type(value)
    if not (kind is dict or kind is list) or not _deeper_than(value, MAX_JSON_DEPTH):
        return
    path, levels = param, MAX_JSON_DEPTH
    for _ in range(4):
        children: Any = value.items() if type(value) is dict else enumerate(value)
        for name, item in children:
            kind = type(item)
            if (kind is dict or kind is list) and _deeper_than(item, levels - 1):
                path += f"[{name}]" if type(value) is list else f".{name}" if path else str(name)
                value, levels = item, levels - 1
                break
    raise InvalidRequestError(
        f"Invalid '{path}': arrays and objects are nested too deeply "
        f"(more than {MAX_JSON_DEPTH} levels).",
        param=path,
    )


def _deeper_than(value: Any, levels: int) -> bool:
    """Whether ``value`` (an array or object, itself one level) nests more than ``levels``."""
    if levels <= 0:
        return True
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if (kind is dict or kind is list) and _deeper_than(item, levels - 1):
            return True
    return False


def json_kind(value: object) -> str:
    """How a JSON value is named in an error message ("a string", "an array" ...)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"


def _validation_error(exc: msgspec.ValidationError, prefix: str = "") -> InvalidRequestError:
    """Turn msgspec's message into OpenAI's style, naming the offending field."""
    text = str(exc)
    path_match = _PATH.search(text)
    path = path_match.group("path") if path_match else ""
    detail = text[: path_match.start()] if path_match else text
    missing = _MISSING.match(detail)
    if missing:
        param = f"{path}.{missing.group('field')}" if path else missing.group("field")
        param = prefix + param
        return InvalidRequestError(f"Missing required parameter: '{param}'.", param=param)
    param = prefix + path if path else (prefix.rstrip(".") or None)
    detail = detail.replace("`", "'")
    where = f" for '{param}'" if param else ""
    return InvalidRequestError(f"Invalid value{where}: {detail}.", param=param)


def parse_chat_request(data: JSONObject) -> ChatRequest:
    """Validate a chat completion request; unknown fields are kept in ``extra``."""
    try:
        request = msgspec.convert(data, ChatRequest)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    if not request.messages:
        raise InvalidRequestError(
            "Invalid 'messages': the list must contain at least one message.", param="messages"
        )
    if request.n is not None and request.n < 1:
        raise InvalidRequestError("Invalid 'n': must be at least 1.", param="n")
    if len(data) > len(_CHAT_FIELDS) or not _CHAT_FIELDS.issuperset(data):
        request.extra = {k: v for k, v in data.items() if k not in _CHAT_FIELDS}
    for message, raw in zip(request.messages, data["messages"], strict=True):
        if not _MESSAGE_FIELDS.issuperset(raw):
            message.extra = {k: v for k, v in raw.items() if k not in _MESSAGE_FIELDS}
    return request


def parse_embedding_request(data: JSONObject) -> EmbeddingRequest:
    try:
        request = msgspec.convert(data, EmbeddingRequest)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    items = request.input
    if items == "" or items == []:
        raise InvalidRequestError("Invalid 'input': it must not be empty.", param="input")
    if isinstance(items, list):
        kinds = {type(item) for item in items}
        if len(kinds) > 1:
            raise InvalidRequestError(
                "Invalid 'input': use one string, a list of strings, a list of token ids "
                "or a list of token-id lists, not a mix.",
                param="input",
            )
        if "" in items:
            raise InvalidRequestError("Invalid 'input': strings must not be empty.", param="input")
    if not _EMBEDDING_FIELDS.issuperset(data):
        request.extra = {k: v for k, v in data.items() if k not in _EMBEDDING_FIELDS}
    return request


# --- canonical -> upstream requests ----------------------------------------------


def chat_request_body(
    request: ChatRequest,
    model: str,
    *,
    force_stream_usage: bool,
    modern_max_tokens: bool = False,
) -> bytes:
    """The OpenAI JSON for ``request``, addressed to the upstream ``model``.

    With ``force_stream_usage`` a streamed request always asks for the final
    usage chunk, so the gateway can account exact usage even when the client
    did not ask for it (the front door then drops that chunk). With
    ``modern_max_tokens`` a deprecated ``max_tokens`` is sent as
    ``max_completion_tokens``, which OpenAI's reasoning models require.
    Anthropic ``thinking_blocks`` kept on assistant messages (``extra``) are not
    sent: no OpenAI-family upstream takes them.
    """
    body: dict[str, Any] = msgspec.to_builtins(request)
    if modern_max_tokens and "max_tokens" in body and "max_completion_tokens" not in body:
        body["max_completion_tokens"] = body.pop("max_tokens")
    extra = body.pop("extra", None)
    body["model"] = model
    messages = body["messages"]
    for index, message in enumerate(request.messages):
        if message.extra:
            encoded = messages[index]
            encoded.pop("extra", None)
            encoded.update(message.extra)
            encoded.pop("thinking_blocks", None)  # Anthropic's, which OpenAI would refuse
    if request.stream and force_stream_usage:
        options = body.get("stream_options") or {}
        options["include_usage"] = True
        body["stream_options"] = options
    if extra:
        body.update(extra)
    return orjson.dumps(body)


def native_chat_body(
    data: JSONObject,
    model: str,
    *,
    force_stream_usage: bool,
    modern_max_tokens: bool = False,
) -> bytes:
    """The client's own OpenAI body, addressed to the upstream ``model``: every field the
    client sent goes on as it was, with the same two adjustments as ``chat_request_body``."""
    body = dict(data)
    body["model"] = model
    if modern_max_tokens and "max_tokens" in body and "max_completion_tokens" not in body:
        body["max_completion_tokens"] = body.pop("max_tokens")
    if force_stream_usage and body.get("stream"):
        options = body.get("stream_options")
        options = dict(options) if isinstance(options, dict) else {}
        options["include_usage"] = True
        body["stream_options"] = options
    return orjson.dumps(body)


def embedding_request_body(
    request: EmbeddingRequest, model: str, *, encoding_format: str | None
) -> bytes:
    body: dict[str, Any] = msgspec.to_builtins(request)
    extra = body.pop("extra", None)
    body["model"] = model
    if encoding_format is None:
        body.pop("encoding_format", None)
    else:
        body["encoding_format"] = encoding_format
    if extra:
        body.update(extra)
    return orjson.dumps(body)


# --- upstream responses -> canonical ---------------------------------------------


def decode_chat_response(body: bytes) -> ChatResponse:
    """Decode an upstream chat completion, keeping its bytes for verbatim relay (while
    the call allows it)."""
    try:
        response = _response_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise UpstreamProtocolError(
            "The upstream returned a response that is not a valid chat completion."
        ) from None
    attach_raw(response, body, "openai")
    return response


def decode_chat_chunks(payloads: list[bytes]) -> list[ChatChunk]:
    """Decode a batch of stream events (one call per batch: this runs per event)."""
    decode = _chunk_decoder.decode
    try:
        return [decode(data) for data in payloads]
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise UpstreamProtocolError(
            "The upstream sent a stream event that is not a valid chat completion chunk."
        ) from None


def decode_embedding_response(body: bytes) -> EmbeddingResponse:
    try:
        return _embedding_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise UpstreamProtocolError(
            "The upstream returned a response that is not a valid embeddings list."
        ) from None


def upstream_error_fields(body: bytes) -> tuple[str | None, str | None, str | None, str | None]:
    """(message, type, code, param) from an OpenAI-style error body, when it is one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None, None, None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):  # some compatible servers answer {"error": "text"}
        return error, None, None, None
    if not isinstance(error, dict):
        message = data.get("message") or data.get("detail") if isinstance(data, dict) else None
        return (message if isinstance(message, str) else None), None, None, None

    def text(key: str) -> str | None:
        value = error.get(key)
        return str(value) if value is not None else None

    return text("message"), text("type"), text("code"), text("param")


# --- canonical -> client responses -----------------------------------------------


def encode_chat_response(response: ChatResponse, *, relay_raw: bool) -> bytes:
    """The OpenAI JSON of ``response``: the upstream's own bytes when it spoke OpenAI's
    format and ``relay_raw`` (no step may have changed the reply), else encoded."""
    raw = raw_of(response, "openai") if relay_raw else None
    return raw if raw is not None else _encoder.encode(response)


def encode_chunk(chunk: ChatChunk) -> bytes:
    return _encoder.encode(chunk)


def encode(value: object) -> bytes:
    return _encoder.encode(value)


def floats_to_base64(vector: list[float]) -> str:
    """OpenAI's base64 embedding encoding: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embeddings_as(response: EmbeddingResponse, encoding_format: str) -> EmbeddingResponse:
    """Convert float vectors to base64 (or back) to honour the client's ``encoding_format``."""
    for item in response.data:
        vector = item.embedding
        if encoding_format == "base64" and isinstance(vector, list):
            item.embedding = floats_to_base64(vector)
        elif encoding_format == "float" and isinstance(vector, str):
            raw = base64.b64decode(vector)
            item.embedding = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return response

"""Canonical request and response types: OpenAI chat semantics as typed structs.

Every front door translates its wire format into these, every provider
translates them into its own. Policies only ever see these types.

msgspec structs are used because they validate and (de)serialise in a few
microseconds, which matters on the hot path. Fields the gateway reasons about
are typed; the rest of a request (new or vendor-specific parameters) is kept
verbatim in ``extra`` so that nothing a client sends is silently dropped.
Content parts, tools and response formats stay as JSON objects: the gateway
passes them through and new part types appear often.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

JSONObject = dict[str, Any]

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class FunctionCall(msgspec.Struct, omit_defaults=True, gc=False):
    name: str | None = None
    arguments: str | None = None


class ToolCall(msgspec.Struct):
    """A complete tool call in a message (arguments are a JSON string).

    Defaults are encoded too: OpenAI requires ``type`` on every tool call.
    """

    id: str
    function: FunctionCall
    type: str = "function"


class ToolCallDelta(msgspec.Struct, omit_defaults=True, gc=False):
    """A fragment of a tool call in a stream chunk, merged by ``index``."""

    index: int
    id: str | None = None
    type: str | None = None
    function: FunctionCall | None = None


class Message(msgspec.Struct, omit_defaults=True, dict=True):
    """One chat message. ``extra`` holds fields the gateway does not model."""

    role: Role
    content: str | list[JSONObject] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None
    extra: JSONObject = msgspec.field(default_factory=dict)

    def text(self) -> str:
        """The message's text, with text parts joined (images and audio ignored)."""
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")


class StreamOptions(msgspec.Struct, omit_defaults=True):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ChatRequest(msgspec.Struct, omit_defaults=True, dict=True):
    """A chat completion request in the canonical (OpenAI) form."""

    model: str
    messages: list[Message]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[JSONObject] | None = None
    tool_choice: str | JSONObject | None = None
    parallel_tool_calls: bool | None = None
    response_format: JSONObject | None = None
    user: str | None = None
    extra: JSONObject = msgspec.field(default_factory=dict)

    @property
    def wants_usage_in_stream(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def output_token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens else self.max_tokens


class Usage(msgspec.Struct, omit_defaults=True, gc=False):
    """Token usage, as the upstream reported it."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: JSONObject | None = None
    completion_tokens_details: JSONObject | None = None


class ResponseMessage(msgspec.Struct, omit_defaults=False):
    """The assistant's message of a reply.

    ``reasoning_content`` is the model's reasoning as text (Anthropic thinking,
    Gemini thoughts, OpenAI-compatible servers that report it); ``thinking_blocks``
    are Anthropic's thinking and redacted-thinking blocks with their signatures, as
    the upstream sent them, so a client can send them back in the next turn. Both
    are left out of the JSON when unset (``UNSET``), so replies without reasoning
    keep OpenAI's exact shape.
    """

    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    reasoning_content: str | msgspec.UnsetType | None = msgspec.UNSET
    thinking_blocks: list[JSONObject] | msgspec.UnsetType | None = msgspec.UNSET


class Choice(msgspec.Struct, omit_defaults=False):
    """One choice of a reply; ``stop_sequence`` is the stop string that ended it, when
    the upstream reports it (Anthropic does; OpenAI-family upstreams do not: unset)."""

    index: int
    message: ResponseMessage
    finish_reason: str | None = None
    logprobs: JSONObject | None = None
    stop_sequence: str | msgspec.UnsetType | None = msgspec.UNSET


class ChatResponse(msgspec.Struct, dict=True, kw_only=True):
    """A complete chat response. ``raw`` (an attribute, not a field) keeps the
    upstream's own bytes so an unmodified response is relayed verbatim.
    Identity fields have defaults because some OpenAI-compatible servers omit them;
    ``choices`` is required: a 200 without it is not a chat completion."""

    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[Choice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class Delta(msgspec.Struct, omit_defaults=True, gc=False):
    """A stream fragment. ``reasoning_content`` carries reasoning text as it arrives;
    ``thinking_blocks`` entries are complete Anthropic blocks: a thinking block (its
    whole text and its signature) once its signature arrived, a redacted-thinking
    block when it starts. Collecting the entries in order gives the message's blocks."""

    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    reasoning_content: str | None = None
    thinking_blocks: list[JSONObject] | None = None


class ChunkChoice(msgspec.Struct, omit_defaults=False, gc=False):
    """One choice of a chunk; ``stop_sequence`` as on ``Choice`` (on the finish chunk)."""

    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: JSONObject | None = None
    stop_sequence: str | msgspec.UnsetType | None = msgspec.UNSET


class ChatChunk(msgspec.Struct, gc=False):
    """One streamed chunk.

    ``gc=False``: chunks are plain trees (no reference cycles), and skipping the
    garbage collector's tracking makes decoding one about 40% cheaper.
    """

    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    choices: list[ChunkChoice] = msgspec.field(default_factory=list)
    usage: Usage | None = None


# One string, a list of strings, one list of token ids, or a list of token-id lists
# (msgspec unions allow one array type; the front door checks the items are uniform).
EmbeddingInput = str | list[str | int | list[int]]


class EmbeddingRequest(msgspec.Struct, omit_defaults=True, dict=True):
    model: str
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = None
    user: str | None = None
    extra: JSONObject = msgspec.field(default_factory=dict)


class Embedding(msgspec.Struct):
    """One vector; ``embedding`` is a list of floats or base64 little-endian float32."""

    index: int
    embedding: list[float] | str
    object: str = "embedding"


class EmbeddingUsage(msgspec.Struct):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingResponse(msgspec.Struct, omit_defaults=True):
    data: list[Embedding]
    model: str
    object: str = "list"
    usage: EmbeddingUsage | None = None


class ChunkBatch:
    """Stream chunks that arrived together, written to the client in one send.

    ``raw`` holds the upstream's own bytes for the batch in its wire format
    (``wire``): for ``openai`` one ``data:`` payload per chunk, in order; for
    ``anthropic`` the batch's framed SSE events, joined (which may carry events
    that have no canonical chunk: pings, block stops, citations; ``chunks`` may
    then be empty, and a door that does not relay skips the batch). A front door of the
    same format relays them verbatim, but only while the call allows raw relay
    (``Call.relay_raw``: no step of the corridor may change output). ``chunks``
    are always the canonical reading of the same data, which steps see.
    """

    __slots__ = ("chunks", "raw", "wire")

    def __init__(
        self, chunks: list[ChatChunk], raw: list[bytes] | None = None, wire: str = "openai"
    ) -> None:
        self.chunks = chunks
        self.raw = raw
        self.wire = wire


def attach_raw(response: ChatResponse, data: bytes, wire: str = "openai") -> None:
    """Keep the upstream's own bytes (in ``wire`` format) on a decoded response.

    A front door of the same format relays them verbatim while the call allows
    raw relay (no step of the corridor may change output).
    """
    response.raw = (wire, data)  # type: ignore[attr-defined]


def raw_of(response: ChatResponse, wire: str) -> bytes | None:
    """The upstream's own bytes of ``response`` when they are in ``wire`` format."""
    raw: tuple[str, bytes] | None = response.__dict__.get("raw")
    return raw[1] if raw is not None and raw[0] == wire else None


class NativeBody(msgspec.Struct, frozen=True, gc=False):
    """A request as the client sent it, for an upstream of the same wire format.

    The front door keeps the parsed JSON (``data``) beside the canonical request; a
    provider that speaks ``wire`` sends it on (with its own model name) instead of
    re-encoding the canonical request, so everything the client sent survives:
    vendor fields, thinking blocks and their signatures, cache control. The corridor
    hands it to providers only while no step may rewrite requests.
    """

    wire: str
    data: JSONObject


class ModelCard(msgspec.Struct):
    """An entry of ``GET /v1/models``."""

    id: str
    created: int
    owned_by: str
    object: str = "model"

"""Offline token counting: exact BPE counts without any download.

Used for ``POST /v1/messages/count_tokens`` (exact counts), for the one prompt
count of every call (``admission_count_request``: the byte heuristic, which
admission, an Anthropic stream's ``message_start`` and usage estimates share),
and for the reply's side of a usage estimate when an upstream reports none.

The tokenizer is ``bpe-openai``, which ships its encodings inside the wheel
(tiktoken downloads them at run time, which fails offline). Importing it costs
about a second, so nothing is loaded until the first count; ``preload`` lets a
caller pay that in a worker thread instead of on the event loop, and the
``quick_*`` functions never block: until the encoder is there they answer with
the character heuristic and start loading it in the background. When the
package is not installed every count is the heuristic, and ``exact()`` says so.

Counts follow OpenAI's encodings: ``o200k_base`` for the gpt-4o, 4.1, 4.5, 5 and
o-series families, ``cl100k_base`` for everything else. For other vendors' models
(Claude, Gemini) they are an estimate of the same order, not that vendor's count.
"""

from __future__ import annotations

import importlib.util
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from gatewise.core.types import ChatRequest, JSONObject, Message

Counter = Callable[[str], int]

O200K = "o200k_base"
CL100K = "cl100k_base"
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "chatgpt-4o", "gpt-oss", "codex")

# OpenAI's published convention for chat prompts: every message costs 3 tokens of
# framing (plus 1 when it has a name) and every reply is primed with 3 more.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# An image's size is unknown without decoding it: OpenAI charges 85 tokens for a
# low-detail image and 765 for a 1024x1024 high-detail one (the common case).
IMAGE_TOKENS_LOW = 85
IMAGE_TOKENS = 765
TOOL_OVERHEAD = 8  # framing per tool definition, on top of its JSON

# bpe-openai's Python wrapper (the fallback when its compiled counter is not
# reachable) refuses long texts; those are counted in slices.
_SLICE = 200_000

_counters: dict[str, Counter] = {}
_lock = threading.Lock()  # guards _loading: held for a moment only, also on the event loop
_build_lock = threading.Lock()  # held while an encoding loads (about a second)
_loading: set[str] = set()
_available: bool | None = None


def exact() -> bool:
    """True when counts come from the real tokenizer (the package is installed)."""
    global _available
    if _available is None:
        _available = importlib.util.find_spec("bpe_openai") is not None
    return _available


def encoding_for(model: str) -> str:
    """The OpenAI encoding used to count tokens for ``model`` (provider prefixes ignored)."""
    name = model.rpartition("/")[2].lower()
    if name.startswith(_O200K_PREFIXES) or (len(name) > 1 and name[0] == "o" and name[1].isdigit()):
        return O200K
    return CL100K


def heuristic_count(text: str) -> int:
    """About four bytes of UTF-8 per token: close for English, cautious for other scripts."""
    if not text:
        return 0
    # ASCII is one byte a character: no need to encode (isascii is a flag lookup).
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return (size + 3) // 4


def _build(encoding: str) -> Counter:
    """Load one encoding (slow: imports the package and reads its tables)."""
    with warnings.catch_warnings():  # the package uses a deprecated importlib.resources call
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            # The compiled backend counts without building a token list; its wrapper
            # (the public, tiktoken-compatible API) is the fallback.
            from bpe_openai import _bindings

            backend: Any = _bindings.tokenizer_for_encoding(encoding)
            count: Counter = backend.count
            return count
        except (ImportError, AttributeError):
            import bpe_openai

            encoder = bpe_openai.get_encoding(encoding)
    return lambda text: sum(len(encoder.encode_ordinary(part)) for part in _slices(text))


def _slices(text: str) -> Iterable[str]:
    """Cut long texts (at whitespace where possible) for the wrapper's length limit."""
    start = 0
    while start < len(text):
        end = min(start + _SLICE, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + _SLICE // 2, end)
            end = cut if cut > start else end
        yield text[start:end]
        start = end


def preload(model: str) -> bool:
    """Load the encoder for ``model`` now (blocking); False when only the heuristic exists."""
    encoding = encoding_for(model)
    if encoding in _counters:
        return True
    if not exact():
        return False
    with _build_lock:
        if encoding not in _counters:
            _counters[encoding] = _build(encoding)
    return True


def is_loaded(model: str) -> bool:
    return encoding_for(model) in _counters


def _counter(model: str) -> Counter | None:
    counter = _counters.get(encoding_for(model))
    if counter is None and preload(model):
        counter = _counters[encoding_for(model)]
    return counter


def _quick_counter(model: str) -> Counter | None:
    """The loaded counter, or None after starting a background load."""
    encoding = encoding_for(model)
    counter = _counters.get(encoding)
    if counter is None and exact():
        with _lock:
            if encoding not in _loading:
                _loading.add(encoding)
                threading.Thread(
                    target=preload, args=(model,), daemon=True, name="tokenizer-load"
                ).start()
    return counter


def _count_with(counter: Counter | None, text: str) -> int:
    if not text:
        return 0
    return heuristic_count(text) if counter is None else counter(text)


# --- public counts -------------------------------------------------------------------


def count_text(text: str, model: str) -> int:
    """Tokens in ``text`` (special-token strings count as ordinary text)."""
    return _count_with(_counter(model), text)


def count_messages(messages: Sequence[Message], model: str) -> int:
    """Prompt tokens of a chat, with OpenAI's per-message framing and reply priming."""
    return _messages_tokens(_counter(model), messages)


def count_request(request: ChatRequest, model: str) -> int:
    """Input tokens of a whole request: messages and tool definitions."""
    counter = _counter(model)
    return _messages_tokens(counter, request.messages) + _tools_tokens(counter, request.tools)


def admission_count_request(request: ChatRequest) -> int:
    """Input tokens for admitting a call against token limits and budgets: the byte
    heuristic, always. It costs microseconds, gives the same answer on every replica and
    at every moment (no "until the tokenizer loaded"), and settlement corrects it with
    the upstream's real count after the call."""
    return _messages_tokens(None, request.messages) + _tools_tokens(None, request.tools)


def quick_count_text(text: str, model: str) -> int:
    """Like ``count_text`` but never blocks on loading (heuristic until loaded)."""
    return _count_with(_quick_counter(model), text)


def _messages_tokens(counter: Counter | None, messages: Sequence[Message]) -> int:
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE + _count_with(counter, message.role)
        total += _content_tokens(counter, message.content)
        if message.name:
            total += TOKENS_PER_NAME + _count_with(counter, message.name)
        for call in message.tool_calls or ():
            function = call.function
            total += TOKENS_PER_MESSAGE + _count_with(counter, function.name or "")
            total += _count_with(counter, function.arguments or "")
        if message.tool_call_id:
            total += _count_with(counter, message.tool_call_id)
    return total


def _content_tokens(counter: Counter | None, content: str | list[JSONObject] | None) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return _count_with(counter, content)
    total = 0
    for part in content:
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            total += _count_with(counter, text) if isinstance(text, str) else 0
        elif kind == "image_url":
            image = part.get("image_url")
            low = isinstance(image, dict) and image.get("detail") == "low"
            total += IMAGE_TOKENS_LOW if low else IMAGE_TOKENS
        else:  # files, audio ...: their JSON is the best cheap proxy
            total += _count_with(counter, orjson.dumps(part).decode())
    return total


def _tools_tokens(counter: Counter | None, tools: Iterable[JSONObject] | None) -> int:
    if not tools:
        return 0
    total = 0
    for tool in tools:
        definition = tool.get("function", tool)
        total += TOOL_OVERHEAD + _count_with(counter, orjson.dumps(definition).decode())
    return total

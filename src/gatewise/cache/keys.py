"""The exact cache's key: the normalised request, hashed, under its scope.

Two requests share an entry when they would get the same answer: the same public
model, messages and every parameter that changes the answer. What does not
change it is left out: whether the reply streams (a stored stream answers a
plain call and the other way round), the caller's ``user`` id and metadata,
storage and tier hints, Anthropic's ``cache_control`` marks (they steer the
upstream's prompt cache, not the reply). The rest is canonical JSON (orjson,
sorted keys, so the order of a client's JSON keys does not matter) hashed with
BLAKE2b (128 bits). The scope comes first: ``t:<tenant id>`` by default, so an
entry never answers another tenant; ``shared`` only when the config chooses it.

The front door's wire format is not in the key: the canonical request is, so an
answer stored through the OpenAI door serves the same call through Anthropic's.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import orjson

from gatewise.core.types import ChatRequest, EmbeddingRequest

#: Request fields (canonical or vendor extras) that never change the answer.
IGNORED = frozenset(
    {
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
        "cache_control",
    }
)
#: Fields of messages and content parts that never change the answer.
IGNORED_IN_MESSAGES = frozenset({"cache_control"})

_to_builtins = msgspec.to_builtins
_dumps = orjson.dumps
_SORTED = orjson.OPT_SORT_KEYS
_blake2b = hashlib.blake2b


def scope_of(tenant_id: str | None, owner: str | None, shared: bool) -> str:
    """The key's scope: ``shared``, the tenant, or (a caller of no tenant) the caller."""
    if shared:
        return "shared"
    if tenant_id is not None:
        return "t:" + tenant_id
    return "o:" + owner if owner is not None else "anonymous"


def request_key(scope: str, model: str, request: ChatRequest | EmbeddingRequest) -> str:
    """``<scope>:<kind>:<32 hex>`` for ``request`` to the public ``model``."""
    data: dict[str, Any] = _to_builtins(request)
    extra = data.pop("extra", None)
    if extra:
        for name, value in extra.items():
            data.setdefault(name, value)
    for name in IGNORED.intersection(data):
        del data[name]
    data["model"] = model
    if isinstance(request, ChatRequest):
        kind = "chat"
        for message in data["messages"]:
            _scrub_message(message)
    else:
        kind = "emb"
    digest = _blake2b(_dumps(data, option=_SORTED), digest_size=16).hexdigest()
    return f"{scope}:{kind}:{digest}"


def _scrub_message(message: dict[str, Any]) -> None:
    extra = message.pop("extra", None)
    if extra:
        for name, value in extra.items():
            if name not in IGNORED_IN_MESSAGES:
                message.setdefault(name, value)
    content = message.get("content")
    if isinstance(content, list):
        message["content"] = [
            {k: v for k, v in part.items() if k not in IGNORED_IN_MESSAGES}
            if isinstance(part, dict) and "cache_control" in part
            else part
            for part in content
        ]


def deterministic(request: ChatRequest | EmbeddingRequest) -> bool:
    """Whether ``request`` asks for one reproducible answer: embeddings always; chat at
    temperature 0 or with a seed, and one choice."""
    if not isinstance(request, ChatRequest):
        return True
    if request.n is not None and request.n != 1:
        return False
    return request.temperature == 0 or request.seed is not None

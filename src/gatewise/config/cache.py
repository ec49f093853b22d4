"""The ``cache:`` section: the exact response cache (``gatewise.cache``).

Off by default: a cache changes what clients get (an earlier answer), so an admin
turns it on. Entries are scoped to the caller's tenant unless ``scope: shared`` is
chosen, and only deterministic requests are cached unless ``deterministic_only``
is false: a request sampled at temperature 1 asks for a fresh answer each time.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import Field

from gatewise.config.base import Strict

#: Thirty days: longer-lived answers belong in a store of their own, not a cache.
MAX_TTL_S = 30 * 24 * 3600


class CacheModelConfig(Strict):
    """Settings for the models a name (or ``fnmatch`` pattern) matches; the first that
    matches a model wins, and what it leaves unset comes from the section."""

    name: str = Field(min_length=1, max_length=128, description="A model name or pattern.")
    enabled: bool = Field(True, description="false: calls of these models are never cached.")
    ttl_s: int | None = Field(None, ge=1, le=MAX_TTL_S, description="Their entries' lifetime.")
    deterministic_only: bool | None = None


class CacheConfig(Strict):
    enabled: bool = False
    backend: Literal["memory", "redis"] = Field(
        "memory",
        description=(
            "memory: each worker process keeps its own entries (LRU, bounded by max_bytes); "
            "redis: every worker and replica shares them at state.redis_url."
        ),
    )
    max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=64 * 1024,
        description="memory: the bytes a worker's entries may take (least recently used go).",
    )
    max_entry_bytes: int = Field(
        1024 * 1024, ge=1024, description="A larger reply (or stream) is not cached."
    )
    ttl_s: int = Field(3600, ge=1, le=MAX_TTL_S, description="How long an entry is served.")
    scope: Literal["tenant", "shared"] = Field(
        "tenant",
        description=(
            "tenant: an entry answers only callers of the tenant that stored it; shared: "
            "every caller with the same request (choose it only for public content)."
        ),
    )
    deterministic_only: bool = Field(
        True,
        description=(
            "Cache only requests that ask for one answer reproducibly: temperature 0 or a "
            "seed, and n of 1 (embeddings always)."
        ),
    )
    keep_pacing: bool = Field(
        False,
        description=(
            "A cached stream is replayed with the timing it first had (from the request's "
            "start); false: as fast as the client reads."
        ),
    )
    models: list[CacheModelConfig] = Field(default_factory=list)

    def rule(self, model: str) -> tuple[bool, int, bool]:
        """(enabled, ttl_s, deterministic_only) for calls of ``model``."""
        for entry in self.models:
            if entry.name == model or fnmatchcase(model, entry.name):
                return (
                    self.enabled and entry.enabled,
                    entry.ttl_s if entry.ttl_s is not None else self.ttl_s,
                    self.deterministic_only
                    if entry.deterministic_only is None
                    else entry.deterministic_only,
                )
        return self.enabled, self.ttl_s, self.deterministic_only


def check_cache(cache: CacheConfig, redis_url: str | None, models: Sequence[str]) -> None:
    """Cross-section checks (``Config`` calls it): Redis needs ``state.redis_url``, and
    each ``cache.models`` entry matches a configured model."""
    if cache.backend == "redis" and not redis_url:
        raise ValueError("cache.backend: redis needs state.redis_url")
    for index, entry in enumerate(cache.models):
        if not any(name == entry.name or fnmatchcase(name, entry.name) for name in models):
            known = ", ".join(models) or "none"
            raise ValueError(
                f"cache.models[{index}].name: {entry.name!r} matches no configured model "
                f"(configured: {known})"
            )

"""The semantic cache as a worker keeps it: built from the ``semantic_cache`` section,
kept across config reloads while that section is unchanged (its entries and the
loaded encoder survive a reload), rebuilt when it changes.

Imports numpy and the encoder only when the cache is enabled, so a gateway without
the ``semantic-cache`` extra starts as before.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from gatewise.config.models import Config
from gatewise.config.semantic_cache import SemanticCacheConfig

if TYPE_CHECKING:
    from gatewise.cache.semantic import SemanticCache
    from gatewise.cache.semantic_step import SemanticCacheStep


class SemanticCacheService:
    """Owns the worker's semantic cache; ``step`` is the current generation's step."""

    def __init__(self) -> None:
        self.cache: SemanticCache | None = None
        self.step: SemanticCacheStep | None = None
        self._settings: SemanticCacheConfig | None = None
        self._retired: list[SemanticCache] = []

    def configure(self, config: Config, config_dir: Path | None = None) -> None:
        """The step for ``config`` (None when the cache is off). Raises with a precise
        message when the cache is on but cannot work (no encoder, unknown model)."""
        settings = config.semantic_cache
        if not settings.enabled:
            self.step = None
            return
        check_models(config)
        if self.cache is None or self._settings != settings:
            cache = build_cache(settings, config_dir)
            if self.cache is not None:
                self._retired.append(self.cache)
            self.cache, self._settings = cache, settings
        from gatewise.cache.semantic_step import SemanticCacheStep

        self.step = SemanticCacheStep(self.cache)

    async def close(self) -> None:
        caches = [*self._retired, *([self.cache] if self.cache is not None else [])]
        self._retired, self.cache, self.step = [], None, None
        await asyncio.gather(*(cache.close() for cache in caches))


def check_models(config: Config) -> None:
    """Every model the section names is configured."""
    settings = config.semantic_cache
    names = {model.name for model in config.models}
    named = [
        *(("semantic_cache.models", m) for m in settings.models or ()),
        *(("semantic_cache.thresholds", m) for m in settings.thresholds),
    ]
    if settings.embedder.startswith("model:"):
        # ModelEmbedder exists, but nothing hands it the generation's corridor yet.
        raise ValueError(
            "semantic_cache.embedder: 'model:<name>' is not available in this version; use 'local'"
        )
    for where, name in named:
        if name not in names:
            known = ", ".join(sorted(names)) or "none"
            raise ValueError(f"{where}: unknown model {name!r} (configured: {known})")


def build_cache(settings: SemanticCacheConfig, config_dir: Path | None = None) -> SemanticCache:
    from gatewise.cache.embedder import build_embedder
    from gatewise.cache.semantic import SemanticCache

    embedder = build_embedder(settings.embedder, settings.model_dir)
    dimensions = getattr(embedder, "dimensions", 0)  # 0: the model's first vector says
    cache = SemanticCache(settings, embedder, dimensions=dimensions)
    if settings.backend == "redis" and settings.redis_url is not None:
        from gatewise.cache.semantic_shared import RedisEntries
        from gatewise.config.secrets import interpolate_url

        cache.shared = RedisEntries(
            interpolate_url(settings.redis_url, config_dir),
            cache.index,
            prefix=settings.key_prefix,
            max_entries=settings.max_entries,
            interval_s=settings.sync_interval_s,
            timeout_s=settings.timeout_ms / 1000,
            guard=settings.guard,
        )
    return cache

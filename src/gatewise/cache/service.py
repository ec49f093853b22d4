"""The exact cache as long as a worker lives: its store survives config reloads (the
entries stay warm); each config generation gets a step with that config's settings.

The store is chosen by the first config that enables the cache; a reload may change
every setting but the backend (and its Redis URL), which takes a restart.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gatewise.cache.memory import MemoryCacheStore
from gatewise.cache.step import CacheStep
from gatewise.cache.store import CacheStore
from gatewise.config.models import Config

log = logging.getLogger("gatewise")


class CacheService:
    def __init__(self) -> None:
        self.store: CacheStore | None = None
        #: The current generation's step (None: the cache is off).
        self.step: CacheStep | None = None
        self._where: tuple[str, str | None] | None = None

    def configure(self, config: Config, config_dir: Path | None) -> CacheStep | None:
        """The step for ``config`` (None when its cache is off), on this worker's store."""
        settings = config.cache
        if not settings.enabled:
            self.step = None
            return None
        where = (settings.backend, config.state.redis_url if settings.backend == "redis" else None)
        store = self.store
        if store is None:
            store = self.store = self._build(config, config_dir)
            self._where = where
        elif where != self._where:
            log.warning("cache.backend changed: the new store is used after a restart")
        if isinstance(store, MemoryCacheStore):
            store.resize(settings.max_bytes)
        self.step = CacheStep(settings, store)
        return self.step

    def _build(self, config: Config, config_dir: Path | None) -> CacheStore:
        settings = config.cache
        if settings.backend == "memory":
            return MemoryCacheStore(settings.max_bytes)
        from gatewise.cache.redis import RedisCacheStore
        from gatewise.config.secrets import interpolate_url

        state = config.state
        assert state.redis_url is not None  # (the config's validation says so)
        url = interpolate_url(state.redis_url, config_dir)
        return RedisCacheStore(url, prefix=state.key_prefix, timeout=state.timeout_ms / 1000)

    async def close(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            await store.close()

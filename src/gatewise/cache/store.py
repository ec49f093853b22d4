"""The ``CacheStore`` protocol: where the exact cache keeps its entries.

An entry is opaque bytes under a key (``cache.keys``) with a lifetime. Two
implementations: ``memory`` (each worker's own, LRU bounded by bytes) and
``redis`` (shared by every worker and replica). A store never fails a call: a
store that cannot answer is a miss, and a write that cannot be made is dropped
(the next identical call stores it again).

``synchronous`` says whether ``get_now`` answers without I/O (memory): the cache
step then looks up without awaiting anything. ``put`` never blocks the caller:
a shared store writes in the background.
"""

from __future__ import annotations

from typing import Protocol


class CacheStore(Protocol):
    #: True when ``get_now`` answers at once (no I/O): the hot path awaits nothing.
    synchronous: bool

    def get_now(self, key: str) -> bytes | None:
        """The entry under ``key`` (None: none, or expired); synchronous stores only."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The entry under ``key``; None also when the store cannot be reached."""
        ...

    def put(self, key: str, data: bytes, ttl_s: float) -> None:
        """Keep ``data`` under ``key`` for ``ttl_s`` seconds (without waiting for it)."""
        ...

    async def close(self) -> None:
        """Finish pending writes (briefly) and free connections."""
        ...

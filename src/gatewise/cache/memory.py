"""The exact cache in a worker's memory: least recently used entries go first once the
entries' bytes reach ``max_bytes``; an entry past its lifetime is never served.

Each entry is charged its key's and data's bytes plus a fixed overhead (the
dictionary slot, the tuple, the objects' headers), so the bound holds for many
small entries too. Lookups and writes are dictionary operations (no I/O, no lock:
one event loop owns the store).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

#: What an entry costs beyond its key's and data's bytes (measured with sys.getsizeof:
#: the tuple, the bytes and str headers, the OrderedDict's link and slot).
ENTRY_OVERHEAD = 256


class MemoryCacheStore:
    """A ``CacheStore`` in this process, bounded by bytes; ``clock`` is for tests."""

    synchronous = True

    def __init__(self, max_bytes: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def resize(self, max_bytes: int) -> None:
        """A new bound (a reloaded config); entries beyond it go at once."""
        self.max_bytes = max_bytes
        self._evict()

    def get_now(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, data = entry
        if expires <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return data

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key)

    def put(self, key: str, data: bytes, ttl_s: float) -> None:
        size = _size(key, data)
        if size > self.max_bytes:
            return  # would evict everything and still not fit
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + ttl_s, data)
        self.bytes += size
        self._evict()

    async def close(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def _evict(self) -> None:
        entries = self._entries
        while self.bytes > self.max_bytes and entries:
            key, (_expires, data) = entries.popitem(last=False)
            self.bytes -= _size(key, data)

    def _drop(self, key: str) -> None:
        _expires, data = self._entries.pop(key)
        self.bytes -= _size(key, data)


def _size(key: str, data: bytes) -> int:
    return len(key) + len(data) + ENTRY_OVERHEAD

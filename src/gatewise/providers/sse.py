"""Incremental parser for Server-Sent Events read from an upstream.

Feed it whatever bytes the socket produced; it returns the complete events
(``event`` name and ``data``) and keeps the unfinished tail. Comments (lines
starting with ``:``) are skipped; multi-line data is joined with newlines.
"""

from __future__ import annotations


class SSEDecoder:
    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[str | None, bytes]]:
        buffer = self._buffer + data if self._buffer else data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        blocks = buffer.split(b"\n\n")
        self._buffer = blocks.pop()  # the unfinished tail (often empty)
        events: list[tuple[str | None, bytes]] = []
        for block in blocks:
            if block.startswith(b"data: ") and b"\n" not in block:  # the common case
                events.append((None, block[6:]))
                continue
            event = _parse_event(block)
            if event is not None:
                events.append(event)
        return events

    @property
    def pending(self) -> bytes:
        """Bytes of an event that has not been completed (left over at end of stream)."""
        return self._buffer


def _parse_event(block: bytes) -> tuple[str | None, bytes] | None:
    name: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        key, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if key == b"data":
            data.append(value)
        elif key == b"event":
            name = value.decode("utf-8", "replace")
    if not data and name is None:
        return None
    return name, b"\n".join(data)

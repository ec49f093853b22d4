"""Scripted misbehaviour for the fake upstreams.

A ``Scenario`` says how the fake should fail (or deviate) for a request. Tests
queue scenarios in-process (``fake.script(...)``); when the fake runs in another
process they put ``[[fake:key=value]]`` markers in the last user message (or the
embeddings input) instead. Both produce the same ``Scenario`` object.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MARKER_PREFIX",
    "MarkerError",
    "Scenario",
    "ScenarioQueue",
    "parse_markers",
    "strip_markers",
]

MARKER_PREFIX = "[[fake:"
MARKER_PREFIX_BYTES = MARKER_PREFIX.encode()
_MARKER_RE = re.compile(r"\[\[fake:([^\]]*)\]\]")


@dataclass(frozen=True, slots=True)
class Scenario:
    """How to answer the next request(s); every field left at its default is normal behaviour.

    - ``status``: answer with this error status and the real OpenAI error body for it
      (429 adds ``retry-after`` and ``x-ratelimit-*`` headers).
    - ``error_message`` / ``error_type`` / ``error_code``: override the error body's fields.
    - ``retry_after``: seconds for ``retry-after`` / ``retry-after-ms``; alone it implies 429.
    - ``slow_first_byte``: seconds to wait before the response headers.
    - ``reset_after``: reset the connection after this many SSE events (non-stream:
      after the headers and half the body).
    - ``garbage``: 200 whose body is not JSON; ``garbage_stream``: 200 SSE of non-JSON events.
    - ``hang``: never answer.
    - ``stall``: non-streamed: send the headers and half the body, then fall silent until the
      caller leaves (its idle timeout fires).
    - ``chunks`` / ``chunk_delay``: number of content deltas / seconds between SSE events.
    - ``ratelimit_headers``: add ``x-ratelimit-*`` headers to the response.
    - ``content``: reply text instead of the echo.
    - ``repeat_system_prompt``: answer with the request's system prompt, as a model that
      leaks its instructions would (to test leak detection).
    - ``pieces``: streamed: the reply's deltas exactly as given (their concatenation is the
      reply's text, or a tool call's arguments when the reply is one; non-streamed: the
      whole of it). In-process only (no marker), for tests that cut a text at given offsets.
    - ``error_event_after``: streamed: send the wire format's mid-stream ``error`` event
      after this many events and end the stream (fakes whose format has one: anthropic).
    - ``redacted_thinking``: add a ``redacted_thinking`` block to the reply, after the
      thinking block if any (fakes whose format has one: anthropic).
    - ``citations``: give the reply's text block a citation (non-streamed: its
      ``citations`` list; streamed: a ``citations_delta`` event) (anthropic).
    - ``headers``: extra response headers (e.g. ``{"x-should-retry": "false"}``).
    - ``times``: how many consecutive requests this scenario applies to.
    """

    status: int | None = None
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    retry_after: float | None = None
    slow_first_byte: float = 0.0
    reset_after: int | None = None
    garbage: bool = False
    garbage_stream: bool = False
    hang: bool = False
    stall: bool = False
    chunks: int | None = None
    chunk_delay: float | None = None
    ratelimit_headers: bool = False
    content: str | None = None
    pieces: tuple[str, ...] | None = None
    repeat_system_prompt: bool = False
    error_event_after: int | None = None
    redacted_thinking: bool = False
    citations: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    times: int = 1

    @property
    def error_status(self) -> int | None:
        """The error status to answer with, if any (``retry_after`` alone means 429)."""
        if self.status is not None and self.status >= 400:
            return self.status
        if self.status is None and self.retry_after is not None:
            return 429
        return None


class ScenarioQueue:
    """FIFO of scripted scenarios, safe to fill from a test thread while the fake serves."""

    def __init__(self) -> None:
        self._items: deque[list[Any]] = deque()  # [scenario, remaining uses]
        self._lock = threading.Lock()

    def push(self, *scenarios: Scenario) -> None:
        with self._lock:
            for scenario in scenarios:
                if scenario.times < 1:
                    raise ValueError("Scenario.times must be at least 1")
                self._items.append([scenario, scenario.times])

    def take(self) -> Scenario | None:
        """The scenario for the next request, or None (cheap when the queue is empty)."""
        if not self._items:
            return None
        with self._lock:
            if not self._items:
                return None
            entry = self._items[0]
            entry[1] -= 1
            if entry[1] <= 0:
                self._items.popleft()
            scenario: Scenario = entry[0]
            return scenario

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return sum(entry[1] for entry in list(self._items))


class MarkerError(ValueError):
    """A ``[[fake:...]]`` marker the fake does not understand (answered with a 400)."""


_FLAGS = frozenset(
    {
        "garbage",
        "garbage_stream",
        "hang",
        "stall",
        "ratelimit_headers",
        "redacted_thinking",
        "citations",
        "repeat_system_prompt",
    }
)
_INTS = frozenset({"status", "reset_after", "chunks", "error_event_after"})
_FLOATS = frozenset({"retry_after", "slow_first_byte", "chunk_delay"})
_STRINGS = frozenset({"error_message", "error_type", "error_code", "content"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _convert(key: str, value: str | None) -> Any:
    if key in _FLAGS:
        return value is None or value.strip().lower() not in _FALSE
    if value is None:
        raise MarkerError(f"fake marker {key!r} needs a value: [[fake:{key}=...]]")
    try:
        if key in _INTS:
            return int(value)
        if key in _FLOATS:
            return float(value)
    except ValueError:
        raise MarkerError(f"fake marker {key!r} has a bad value {value!r}") from None
    if key in _STRINGS:
        return value
    raise MarkerError(f"unknown fake marker {key!r}")


def parse_markers(text: str) -> Scenario | None:
    """Build a Scenario from every ``[[fake:key]]`` / ``[[fake:key=value]]`` marker in text."""
    fields: dict[str, Any] = {}
    for match in _MARKER_RE.finditer(text):
        key, eq, value = match.group(1).partition("=")
        key = key.strip()
        fields[key] = _convert(key, value if eq else None)
    return Scenario(**fields) if fields else None


def strip_markers(text: str) -> str:
    """The text without its markers (so replies do not echo them)."""
    return _MARKER_RE.sub("", text).strip()

"""What every guardrail speaks: findings with scores and spans, and the protocol.

A *detector* reads one text and reports ``Finding``s: which guardrail, which
category (an attack family such as ``instruction_override``, or an entity type
such as ``EMAIL``), a score in [0, 1] and, where the finding is a piece of the
text, its spans. Offsets are Unicode code points into the text as given (Python
string indices), so callers can mask or report them without re-reading it.

Detectors never decide: a rule in a profile compares a finding's score with its
threshold and applies its action (``block``, ``mask`` or ``flag``). Findings
carry no raw values, so a verdict can be logged and recorded safely.

``Guardrail`` is the extension point (third-party guardrails load through the
``gatewise.guardrails`` entry point group): an async ``scan`` so a guardrail
may call a service (the ``webhook`` guardrail does). The built-in detectors are
synchronous (microseconds each) and are wrapped by ``SyncGuardrail``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

#: Who wrote the text: the caller (``user``), the application (``system``,
#: ``developer``), a model (``assistant``) or a tool result or document (``tool``),
#: where indirect injection arrives.
TextRole = Literal["system", "developer", "user", "assistant", "tool"]
#: Where a rule runs: on what goes to the model, on what comes back, or both.
Direction = Literal["input", "output"]
#: What a rule does with a finding over its threshold (``allow`` is no finding).
Action = Literal["allow", "flag", "mask", "block"]


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of a text: [start, end) in code points, and what it is (e.g. ``EMAIL``)."""

    start: int
    end: int
    type: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a detector saw. ``spans`` is empty for a finding about the whole text
    (an injection attempt); maskable findings (PII, secrets) always have spans."""

    guardrail: str
    category: str
    score: float
    spans: tuple[Span, ...] = ()


@runtime_checkable
class Guardrail(Protocol):
    """A guardrail: reads one text, reports what it found."""

    #: The name rules refer to and verdicts carry (``prompt_injection``, ``pii``, ...).
    name: str

    async def scan(self, text: str, role: TextRole) -> Sequence[Finding]: ...


class Detector(Protocol):
    """A synchronous detector (the built-in ones): the same as ``Guardrail.scan``."""

    name: str

    def detect(self, text: str, role: TextRole = "user") -> list[Finding]: ...


class Memory:
    """The findings of texts read recently, by role, length and Python's string hash
    (SipHash with a per-process random key, so a text cannot be crafted to take another's
    findings); never the text itself, and the findings hold no text either. The oldest
    entry goes when it is full; a size of 0 remembers nothing."""

    __slots__ = ("_entries", "size")

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: dict[tuple[str, int, int], list[Finding]] = {}

    def get(self, text: str, role: str) -> list[Finding] | None:
        return self._entries.get((role, len(text), hash(text))) if self.size else None

    def put(self, text: str, role: str, found: list[Finding]) -> None:
        if not self.size:
            return
        entries = self._entries
        if len(entries) >= self.size:
            del entries[next(iter(entries))]
        entries[(role, len(text), hash(text))] = found


class RememberingGuardrail:
    """A ``Guardrail`` that judges a text in an awaitable ``judge`` (a model in a worker
    thread) and keeps a ``Memory`` of its findings; ``scan_once`` judges without keeping
    (a stream's window, which will not come back)."""

    name: str

    def __init__(self, memory: int = 4096) -> None:
        self._memory = Memory(memory)

    async def scan(self, text: str, role: TextRole) -> Sequence[Finding]:
        found = self._memory.get(text, role)
        if found is None:
            found = await self.judge(text, role)
            self._memory.put(text, role, found)
        return found

    async def scan_once(self, text: str, role: TextRole) -> Sequence[Finding]:
        return await self.judge(text, role)

    async def judge(self, text: str, role: TextRole) -> list[Finding]:
        raise NotImplementedError


#: Texts at least this long are read in a worker thread: a detector takes about a second
#: per megabyte, which on the event loop would stall every other request of the worker.
OFF_LOOP_CHARS = 32_768


async def read(
    detect: Callable[[str, TextRole], list[Finding]], text: str, role: TextRole
) -> list[Finding]:
    """``detect(text, role)``, in a worker thread when ``text`` is long."""
    if len(text) >= OFF_LOOP_CHARS:
        return await asyncio.to_thread(detect, text, role)
    return detect(text, role)


class SyncGuardrail:
    """A ``Guardrail`` around a synchronous ``Detector``, with a ``Memory``: most of what
    a request carries was read before (the application's system prompt on every call,
    the whole history on every turn of a conversation). A long text is read in a worker
    thread (``OFF_LOOP_CHARS``), and not remembered."""

    __slots__ = ("_memory", "detector", "name")

    def __init__(self, detector: Detector, memory: int = 4096) -> None:
        self.detector = detector
        self.name = detector.name
        self._memory = Memory(memory)

    async def scan(self, text: str, role: TextRole) -> Sequence[Finding]:
        if len(text) >= OFF_LOOP_CHARS:
            return await read(self.detector.detect, text, role)
        return self.detect(text, role)

    async def scan_once(self, text: str, role: TextRole) -> Sequence[Finding]:
        """``scan`` for a text that will not come back (a stream's window): not
        remembered, so it does not push out what will."""
        return await read(self.detector.detect, text, role)

    def detect(self, text: str, role: TextRole) -> list[Finding]:
        found = self._memory.get(text, role)
        if found is None:
            found = self.detector.detect(text, role)
            self._memory.put(text, role, found)
        return found

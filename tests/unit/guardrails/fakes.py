"""Small regex guardrails for testing the guardrail machinery without the real detectors."""

from __future__ import annotations

import re

from gatewise.core.types import ChatChunk, ChunkChoice, Delta
from gatewise.guardrails.base import Finding, Span, SyncGuardrail, TextRole

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+\w")
KEY = re.compile(r"sk-[A-Za-z0-9]{20,}")


class EmailDetector:
    name = "pii"

    def detect(self, text: str, role: TextRole = "user") -> list[Finding]:
        spans = tuple(Span(m.start(), m.end(), "EMAIL") for m in EMAIL.finditer(text))
        return [Finding("pii", "EMAIL", 0.9, spans)] if spans else []


class KeyDetector:
    name = "secrets"

    def detect(self, text: str, role: TextRole = "user") -> list[Finding]:
        spans = tuple(Span(m.start(), m.end(), "OPENAI_API_KEY") for m in KEY.finditer(text))
        return [Finding("secrets", "OPENAI_API_KEY", 1.0, spans)] if spans else []


class OverrideDetector:
    name = "prompt_injection"

    def detect(self, text: str, role: TextRole = "user") -> list[Finding]:
        if "ignore previous instructions" in text.lower():
            return [Finding("prompt_injection", "instruction_override", 0.95)]
        return []


PII = SyncGuardrail(EmailDetector())
SECRETS = SyncGuardrail(KeyDetector())
INJECTION = SyncGuardrail(OverrideDetector())


def chunk(text: str | None = None, finish: str | None = None, index: int = 0) -> ChatChunk:
    return ChatChunk(
        id="c", choices=[ChunkChoice(index=index, delta=Delta(content=text), finish_reason=finish)]
    )


def texts(chunks: list[ChatChunk]) -> list[str]:
    return [c.choices[0].delta.content or "" for c in chunks if c.choices]

"""The ``moderation`` guardrail: banned topics, keywords and patterns from the config.

Topics and keywords match whole words or phrases, case-insensitively. Each
match is a span (so ``mask`` can redact it); a topic's category is its name,
keywords are ``keyword`` and patterns ``pattern``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gatewise.config.guardrails import ModerationConfig
from gatewise.guardrails.base import Finding, Span, TextRole


def _words(phrases: Iterable[str]) -> re.Pattern[str] | None:
    alternatives = sorted({p.strip() for p in phrases if p.strip()}, key=len, reverse=True)
    if not alternatives:
        return None
    body = "|".join(re.escape(p) for p in alternatives)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


class ModerationDetector:
    name = "moderation"

    def __init__(self, config: ModerationConfig) -> None:
        self._checks: list[tuple[str, re.Pattern[str]]] = []
        for topic, phrases in config.topics.items():
            pattern = _words(phrases)
            if pattern is not None:
                self._checks.append((topic, pattern))
        keywords = _words(config.keywords)
        if keywords is not None:
            self._checks.append(("keyword", keywords))
        for regex in config.patterns:
            self._checks.append(("pattern", re.compile(regex, re.IGNORECASE)))

    def detect(self, text: str, role: TextRole = "user") -> list[Finding]:
        found: list[Finding] = []
        for category, pattern in self._checks:
            spans = tuple(
                Span(m.start(), m.end(), category)
                for m in pattern.finditer(text)
                if m.end() > m.start()
            )
            if spans:
                found.append(Finding(self.name, category, 1.0, spans))
        return found

"""The moderation guardrail's optional classifier: banned topics judged by meaning.

Each topic's phrases (``moderation.topics``) are embedded once with the model
tier's sentence encoder (MiniLM, ONNX Runtime); a text is embedded whole and its
cosine similarity to the nearest phrase of each topic is that topic's score,
reported when it reaches ``moderation.similarity``. So "how do I make a pipe
bomb" is the ``weapons`` topic though it shares no phrase with "build a bomb".
Encoding takes milliseconds, so it runs in a worker thread, after the word lists
(which answer alone when they already found the topic).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from gatewise.guardrails.base import Finding, RememberingGuardrail, TextRole, read


class TopicClassifier:
    def __init__(
        self, encoder: Any, topics: Mapping[str, Sequence[str]], similarity: float
    ) -> None:
        self.encoder = encoder
        self.similarity = similarity
        self.names = [name for name, phrases in topics.items() if phrases]
        self._phrases = {name: encoder.embed(list(topics[name])) for name in self.names}

    def detect(self, text: str) -> list[Finding]:
        if not self.names or not text.strip():
            return []
        vector = self.encoder.embed([text])[0]
        found: list[Finding] = []
        for name in self.names:
            closest = float((self._phrases[name] @ vector).max())
            if closest >= self.similarity:
                found.append(Finding("moderation", name, min(closest, 1.0)))
        return found


class ModerationWithClassifier(RememberingGuardrail):
    """The word lists, then the classifier for the topics they did not find."""

    name = "moderation"

    def __init__(self, words: Any, classifier: TopicClassifier, memory: int = 4096) -> None:
        super().__init__(memory)
        self.words = words
        self.classifier = classifier

    async def judge(self, text: str, role: TextRole) -> list[Finding]:
        found = await read(self.words.detect, text, role)
        judged = await asyncio.to_thread(self.classifier.detect, text)
        named = {finding.category for finding in found}
        return [*found, *(finding for finding in judged if finding.category not in named)]

"""``SecretsDetector``: credentials in a text, one finding per kind.

Shaped like ``PiiDetector`` (one ``Finding`` per category, score = best match,
every occurrence a span, spans never overlapping): a password assignment whose
value is itself an API key is reported once, as the key (the higher score wins,
then the longer span).

A secret is a secret whoever wrote it, so ``role`` changes nothing; a profile
decides whether a key in a model's answer is blocked or masked.

``guardrails/screen.py`` skips this detector for texts without any of the literals its
parts look for first (token markers, AWS and password words, ``-----BEGIN``, ``eyJ``,
``://``): a part that looks for something else must be taught to the screen too.
"""

from __future__ import annotations

from collections.abc import Iterable

from gatewise.guardrails.base import Finding, TextRole
from gatewise.guardrails.pii.detector import findings_from, resolve_overlaps
from gatewise.guardrails.pii.recognizer import Match
from gatewise.guardrails.secrets.blocks import find_jwts, find_private_keys
from gatewise.guardrails.secrets.passwords import find_passwords
from gatewise.guardrails.secrets.tokens import TOKEN_RULES, find_tokens

#: Every category this detector reports.
CATEGORIES: frozenset[str] = frozenset(
    {rule.category for rule in TOKEN_RULES}
    | {"AWS_SECRET_ACCESS_KEY", "PRIVATE_KEY", "JWT", "PASSWORD"}
)


class SecretsDetector:
    """API keys and tokens, private keys, JWTs, passwords.

    ``categories`` limits what is reported (default: all of ``CATEGORIES``).
    """

    name = "secrets"

    __slots__ = ("categories",)

    def __init__(self, categories: Iterable[str] | None = None) -> None:
        chosen = CATEGORIES if categories is None else frozenset(categories)
        unknown = chosen - CATEGORIES
        if unknown:
            raise ValueError(f"unknown secret categories: {sorted(unknown)}")
        self.categories = chosen

    def matches(self, text: str) -> list[Match]:
        """Every accepted match, overlaps resolved, sorted by start."""
        if len(text) < 8:
            return []
        lower = text.lower()
        if len(lower) != len(text):
            lower = text
        matches = find_tokens(text, lower)
        matches += find_private_keys(text)
        matches += find_jwts(text)
        matches += find_passwords(text, lower)
        return resolve_overlaps(m for m in matches if m.type in self.categories)

    def detect(self, text: str, role: TextRole = "user") -> list[Finding]:
        """Findings for ``text``."""
        return findings_from(self.name, self.matches(text))

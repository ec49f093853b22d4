"""Replacing found values: reversible placeholders, redaction, hashing.

Reversible masking gives each distinct value of a conversation a placeholder
(``<EMAIL_1>``, ``<EMAIL_2>``, ``<CREDIT_CARD_1>``) that the model sees instead;
the caller gets the real values back wherever the model repeats a placeholder
(replies, streams, tool-call arguments). Placeholders are numbered by first
appearance in the request, and every request carries its whole conversation
(chat history, or a Responses conversation rebuilt from the stored items the
caller sent), so the same value keeps the same placeholder on every turn
without any state kept between requests.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gatewise.guardrails.base import Span

#: A complete placeholder: ``<LABEL_n>``.
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*?)_(\d{1,6})>")
#: The start of a placeholder cut at the end of a text (``<``, ``<EM``, ``<EMAIL_1``).
_OPEN_TAIL = re.compile(r"<[A-Z0-9_]*\Z")

#: What a placeholder's label may not hold (moderation's topic names are free-form).
_NOT_LABEL = re.compile(r"[^A-Z0-9_]")

#: The key of ``hash`` masking when the config names none (``guardrails.hash_key``): a
#: value hashes the same on every request of this process. A key is what keeps a tag
#: from being checked against guessed values (phone numbers are few enough to guess).
_PROCESS_KEY = os.urandom(32)


@dataclass(frozen=True, slots=True)
class Replacement:
    """Text [start, end) of some text becomes ``text``."""

    start: int
    end: int
    text: str


class Vault:
    """The placeholders of one conversation, both ways."""

    __slots__ = ("_counts", "_to_placeholder", "_to_value", "longest")

    def __init__(self) -> None:
        self._to_placeholder: dict[tuple[str, str], str] = {}
        self._to_value: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        #: The length of the longest placeholder handed out (how much a stream holds back).
        self.longest = 0

    def __bool__(self) -> bool:
        return bool(self._to_value)

    def placeholder(self, label: str, value: str) -> str:
        key = (label, value)
        found = self._to_placeholder.get(key)
        if found is None:
            label = placeholder_label(label)
            count = self._counts.get(label, 0) + 1
            self._counts[label] = count
            found = f"<{label}_{count}>"
            self._to_placeholder[key] = found
            self._to_value[found] = value
            self.longest = max(self.longest, len(found))
        return found

    def value(self, placeholder: str) -> str | None:
        return self._to_value.get(placeholder)

    def unmask(self, text: str, *, escape: bool = False) -> list[Replacement]:
        """Where ``text`` holds placeholders of this vault, with their values (escaped for a
        JSON string when ``escape``: tool-call arguments)."""
        if not self._to_value or "<" not in text:
            return []
        found: list[Replacement] = []
        for match in PLACEHOLDER.finditer(text):
            value = self._to_value.get(match.group(0))
            if value is not None:
                found.append(
                    Replacement(
                        match.start(), match.end(), json_escaped(value) if escape else value
                    )
                )
        return found

    def open_tail(self, text: str) -> int:
        """Where a placeholder that may still be completing starts at the end of ``text``
        (``len(text)`` when none may)."""
        if not self._to_value:
            return len(text)
        start = text.rfind("<", max(0, len(text) - self.longest))
        if start >= 0 and _OPEN_TAIL.match(text, start):
            return start
        return len(text)


def placeholder_label(label: str) -> str:
    """``label`` as ``PLACEHOLDER`` reads it back: upper case, ``_`` for anything else, a
    letter first (``keyword`` -> ``KEYWORD``, ``self-harm`` -> ``SELF_HARM``)."""
    out = _NOT_LABEL.sub("_", label.upper())
    return out if "A" <= out[:1] <= "Z" else "X" + out


def json_escaped(value: str) -> str:
    """``value`` as it must appear inside a JSON string."""
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    if any(ord(c) < 0x20 for c in out):
        out = "".join(c if ord(c) >= 0x20 else f"\\u{ord(c):04x}" for c in out)
    return out


def label_of(span_type: str) -> str:
    """The placeholder label of an entity type (``EMAIL_ADDRESS`` -> ``EMAIL``)."""
    return LABELS.get(span_type, span_type)


#: Short labels for the names other detectors (presidio, plug-ins) use.
LABELS = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "IBAN_CODE": "IBAN",
    "SSN": "US_SSN",
    "IP": "IP_ADDRESS",
}


def replacement_for(
    span: Span, value: str, style: str, vault: Vault | None, key: bytes | None = None
) -> str:
    label = label_of(span.type)
    if style == "placeholder" and vault is not None:
        return vault.placeholder(label, value)
    if style == "hash":
        return f"[{label}:{hash_tag(value, key or _PROCESS_KEY)}]"
    return f"[{label}]"


def hash_tag(value: str, key: bytes) -> str:
    """The first 12 hex digits of HMAC-SHA256(key, value)."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


def mask_spans(
    text: str,
    masks: Iterable[tuple[Span, str]],
    vault: Vault | None,
    hash_key: bytes | None = None,
) -> list[Replacement]:
    """Replacements for ``masks`` (a span and its style) over ``text``. Overlapping spans
    (from several rules or detectors) merge into one region, typed and styled by its
    longest span, so nothing is replaced twice and no piece of a value is left between
    two replacements."""
    ordered = sorted(masks, key=lambda item: (item[0].start, item[0].start - item[0].end))
    regions: list[tuple[int, int, Span, str]] = []  # start, end, the longest span, its style
    for span, style in ordered:
        if span.end <= span.start:
            continue
        if regions and span.start < regions[-1][1]:
            start, end, longest, longest_style = regions[-1]
            if span.end - span.start > longest.end - longest.start:
                longest, longest_style = span, style
            regions[-1] = (start, max(end, span.end), longest, longest_style)
        else:
            regions.append((span.start, span.end, span, style))
    return [
        Replacement(
            start,
            end,
            replacement_for(
                Span(start, end, longest.type), text[start:end], style, vault, hash_key
            ),
        )
        for start, end, longest, style in regions
    ]


def apply(text: str, replacements: Sequence[Replacement]) -> str:
    """``text`` with non-overlapping, ordered ``replacements`` made."""
    if not replacements:
        return text
    parts: list[str] = []
    at = 0
    for rep in replacements:
        parts.append(text[at : rep.start])
        parts.append(rep.text)
        at = rep.end
    parts.append(text[at:])
    return "".join(parts)

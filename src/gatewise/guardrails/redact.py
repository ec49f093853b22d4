"""One-way redaction of spans: ``[TYPE]`` placeholders or salted-hash tags.

Pure functions over a text and the spans detectors reported. Spans may come
from several detectors (PII and secrets) and may overlap: overlapping spans are
merged into one region that takes the type of its longest span (the most
complete reading of that text), so nothing is replaced twice and nothing of a
secret is left between two placeholders.

``hash_spans`` keeps equal values recognisable without revealing them (the same
e-mail address becomes the same tag throughout a conversation), which a
reader of logs or a model can still reason about. The tag is the first 12 hex
digits of HMAC-SHA256 keyed with a salt the operator keeps secret: without the
salt, a tag cannot be checked against guessed values (a phone number has few
enough possible values to guess). Reversible masking lives in ``masking.py``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable

from gatewise.guardrails.base import Span


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Sorted, non-overlapping spans: each group of overlapping spans becomes one
    span over their union, typed by the longest of them (the first on a tie)."""
    merged: list[Span] = []
    longest: Span | None = None
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if span.end <= span.start:
            continue
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            if longest is None or span.end - span.start > longest.end - longest.start:
                longest = span
            merged[-1] = Span(last.start, max(last.end, span.end), longest.type)
        else:
            merged.append(span)
            longest = span
    return merged


def _replace(text: str, spans: Iterable[Span], label: Callable[[Span], str]) -> str:
    parts: list[str] = []
    position = 0
    for span in merge_spans(spans):
        start, end = max(span.start, position), min(span.end, len(text))
        if start >= end:
            continue
        parts.append(text[position:start])
        parts.append(label(Span(start, end, span.type)))
        position = end
    parts.append(text[position:])
    return "".join(parts)


def redact(text: str, spans: Iterable[Span]) -> str:
    """``text`` with each (merged) span replaced by ``[TYPE]``."""
    return _replace(text, spans, lambda span: f"[{span.type}]")


def hash_tag(value: str, salt: bytes) -> str:
    """The first 12 hex digits of HMAC-SHA256(salt, value)."""
    return hmac.new(salt, value.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


def hash_spans(text: str, spans: Iterable[Span], salt: bytes | str) -> str:
    """``text`` with each (merged) span replaced by ``[TYPE:<hash_tag of its value>]``."""
    key = salt.encode("utf-8") if isinstance(salt, str) else salt
    return _replace(
        text, spans, lambda span: f"[{span.type}:{hash_tag(text[span.start : span.end], key)}]"
    )

"""What a PII recognizer is, and the context-word helper they share.

A recognizer is a plain function ``(text, lower) -> list[Match]``: ``lower`` is
``text.lower()`` computed once per call by the detector, because most
recognizers read the words around a candidate and lowering a 2 KB text costs
about a microsecond while lowering each window separately costs more. Lowering
keeps code-point offsets for almost every text; where it does not (a handful of
characters such as ``İ`` grow when lowered) the detector passes ``text`` itself
as ``lower`` and the context words are matched case-sensitively (a small loss,
never a wrong offset).

Recognizers find a *candidate* with a regular expression that cannot backtrack
badly (every variable-length run is anchored by a negative lookbehind of the
same class, so each run is tried from its first character only), then
*validate* it in Python (checksums, lengths, ranges) and *score* it, raising or
lowering the score by context words. Validation in code rather than in a clever
pattern keeps the patterns linear and the rules readable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Match:
    """One recognized piece of text: [start, end) in code points, its entity type, a score."""

    start: int
    end: int
    type: str
    score: float


#: ``(text, lower) -> matches``; see the module docstring.
Recognizer = Callable[[str, str], list[Match]]


def words(*phrases: str) -> re.Pattern[str]:
    """Context words as one pattern (one scan of a window instead of one per word)."""
    return re.compile("|".join(re.escape(phrase) for phrase in phrases))


def near(
    lower: str, start: int, end: int, context: re.Pattern[str], before: int, after: int = 0
) -> bool:
    """Whether ``context`` occurs in the ``before`` characters before ``start`` or the
    ``after`` characters after ``end`` (``lower`` is the lowered text)."""
    if context.search(lower, max(0, start - before), start) is not None:
        return True
    return bool(after) and context.search(lower, end, end + after) is not None


def clamp(score: float) -> float:
    """A score kept in [0, 1] and rounded so findings compare and print cleanly."""
    return round(min(1.0, max(0.0, score)), 2)


#: Words that say a number is *not* personal data: it identifies a thing, an order,
#: a parcel, a book, a build. Shared by the number recognizers to lower scores.
NOT_PERSONAL_WORDS = words(
    "order",
    "invoice",
    "tracking",
    "parcel",
    "shipment",
    "isbn",
    "issn",
    "sku",
    "serial",
    "ticket",
    "build",
    "version",
    "release",
    "ref.",
    "reference",
    "case #",
    "case no",
    "transaction id",
    "part no",
)

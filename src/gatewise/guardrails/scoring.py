"""Scoring span detectors against labelled text: precision, recall, F1 per type.

Used by ``bench/pii_compare.py`` and by the test that holds the shipped sample
(``eval/guardrails/pii.jsonl``) to its targets, so both count the same way.

A predicted span is a true positive when it has the type of a labelled span it
overlaps that no other prediction has claimed; boundaries may differ (one
recognizer includes a phone extension, another does not; what matters for
masking is that the value is found). How many true positives also match the
boundaries exactly is counted separately. A prediction overlapping no labelled
span of its type is a false positive; a labelled span nobody found is a false
negative.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gatewise.guardrails.base import Span


@dataclass(slots=True)
class Counts:
    """Tallies for one entity type."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    exact: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score_row(gold: Iterable[Span], predicted: Iterable[Span], into: dict[str, Counts]) -> None:
    """Add one text's tallies to ``into`` (type -> counts)."""
    unclaimed = sorted(gold, key=lambda s: s.start)
    for span in sorted(predicted, key=lambda s: s.start):
        counts = into.setdefault(span.type, Counts())
        hit = next(
            (
                g
                for g in unclaimed
                if g.type == span.type and g.start < span.end and span.start < g.end
            ),
            None,
        )
        if hit is None:
            counts.fp += 1
            continue
        unclaimed.remove(hit)
        counts.tp += 1
        counts.exact += hit.start == span.start and hit.end == span.end
    for g in unclaimed:
        into.setdefault(g.type, Counts()).fn += 1


def total(counts: dict[str, Counts]) -> Counts:
    """All types together (micro-average)."""
    out = Counts()
    for c in counts.values():
        out.tp += c.tp
        out.fp += c.fp
        out.fn += c.fn
        out.exact += c.exact
    return out

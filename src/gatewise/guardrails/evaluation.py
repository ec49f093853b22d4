"""Evaluation of guardrail detectors on labelled rows: pure arithmetic, no I/O.

Why here and not in a notebook: the figures a profile's threshold is chosen by
must be reproducible, and a test can pin them so a regression fails CI.

Two kinds of rows:

* **classification** ``{"text", "label": "attack"|"benign", "family"?, "role"?}``.
  A row is *predicted positive* when the checker returns any finding for it
  (the checker is expected to return only findings over threshold). Per
  guardrail: precision, recall, F1 and false-positive rate over all rows. Per
  family ``F``: the positives are the attack rows labelled ``F`` and the
  negatives are the benign rows, so recall is "share of F attacks caught (by any
  category)" and the false-positive rate is "share of benign rows given a
  category-F finding"; precision is TP / (TP + those false positives).
* **span** ``{"text", "spans": [{"start", "end", "type"}]}``, counted by
  ``score_spans``: a predicted span is a true positive when it overlaps (shares
  at least one code point with) a gold span of the same type that no other
  prediction has claimed; boundaries may differ (what matters for masking is
  that the value is found), and how many true positives also match the
  boundaries exactly is counted apart (``exact``). A prediction that claims no
  gold span is a false positive, a gold span nobody claimed a false negative.
  No false-positive rate: there is no negative unit.

Latency is measured around each checker call (``time.perf_counter``), p50 and
p99 in milliseconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import Finding, Span

Checker = Callable[[str], Sequence[Finding]]


@dataclass(slots=True)
class Counts:
    """Confusion counts for one guardrail or one family/entity type."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    #: False for span counts: no negative unit, so no false-positive rate.
    negatives: bool = True
    #: Span counts: true positives whose boundaries are the gold span's exactly.
    exact: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fpr(self) -> float | None:
        """False-positive rate, or None where there are no negatives (span rows)."""
        if not self.negatives or not self.fp + self.tn:
            return None
        return self.fp / (self.fp + self.tn)


@dataclass(slots=True)
class Report:
    """What ``evaluate`` found: overall counts, per group counts and latency."""

    guardrail: str
    kind: str  # "classification" or "span"
    rows: int
    overall: Counts
    groups: dict[str, Counts] = field(default_factory=dict)
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def _pick(checker: Checker | Mapping[str, Checker], row: Mapping[str, Any]) -> Checker:
    if isinstance(checker, Mapping):
        return checker[str(row.get("role", "user"))]
    return checker


def _timed(check: Checker, text: str, latencies: list[float]) -> Sequence[Finding]:
    start = time.perf_counter()
    findings = check(text)
    latencies.append((time.perf_counter() - start) * 1000.0)
    return findings


def evaluate(
    rows: Iterable[Mapping[str, Any]],
    checker: Checker | Mapping[str, Checker],
    guardrail: str,
) -> Report:
    """Run ``checker`` over ``rows`` and count. ``checker`` may be a mapping from
    a row's ``role`` (default ``user``) to a checker, for role-aware detectors.
    Rows with ``spans`` are span rows; all rows must be of one kind."""
    items = list(rows)
    if items and "spans" in items[0]:
        return _evaluate_spans(items, checker, guardrail)
    return _evaluate_labels(items, checker, guardrail)


def _evaluate_labels(
    rows: list[Mapping[str, Any]], checker: Checker | Mapping[str, Checker], guardrail: str
) -> Report:
    overall = Counts()
    groups: dict[str, Counts] = {}
    latencies: list[float] = []
    benign_flags: list[set[str]] = []
    for row in rows:
        findings = [
            f
            for f in _timed(_pick(checker, row), row["text"], latencies)
            if f.guardrail == guardrail
        ]
        flagged = bool(findings)
        if row["label"] == "attack":
            family = str(row.get("family") or "unknown")
            counts = groups.setdefault(family, Counts())
            if flagged:
                overall.tp += 1
                counts.tp += 1
            else:
                overall.fn += 1
                counts.fn += 1
        else:
            if flagged:
                overall.fp += 1
            else:
                overall.tn += 1
            benign_flags.append({f.category for f in findings})
    for family, counts in groups.items():
        counts.fp = sum(1 for cats in benign_flags if family in cats)
        counts.tn = len(benign_flags) - counts.fp
    return Report(
        guardrail=guardrail,
        kind="classification",
        rows=len(rows),
        overall=overall,
        groups=dict(sorted(groups.items())),
        latency_p50_ms=percentile(latencies, 50),
        latency_p99_ms=percentile(latencies, 99),
    )


def score_spans(gold: Iterable[Span], predicted: Iterable[Span], into: dict[str, Counts]) -> None:
    """Add one text's span counts to ``into`` (entity type -> counts); see the module
    docstring for what counts as a hit."""
    unclaimed = sorted(gold, key=lambda s: s.start)
    for span in sorted(predicted, key=lambda s: s.start):
        counts = into.setdefault(span.type, Counts(negatives=False))
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
        into.setdefault(g.type, Counts(negatives=False)).fn += 1


def total(counts: dict[str, Counts]) -> Counts:
    """Every type together (micro-average)."""
    out = Counts(negatives=False)
    for c in counts.values():
        out.tp += c.tp
        out.fp += c.fp
        out.fn += c.fn
        out.exact += c.exact
    return out


def _evaluate_spans(
    rows: list[Mapping[str, Any]], checker: Checker | Mapping[str, Checker], guardrail: str
) -> Report:
    groups: dict[str, Counts] = {}
    latencies: list[float] = []
    for row in rows:
        gold = [Span(int(s["start"]), int(s["end"]), str(s["type"])) for s in row["spans"]]
        predicted = [
            s
            for f in _timed(_pick(checker, row), row["text"], latencies)
            if f.guardrail == guardrail
            for s in f.spans
        ]
        score_spans(gold, predicted, groups)
    overall = total(groups)
    return Report(
        guardrail=guardrail,
        kind="span",
        rows=len(rows),
        overall=overall,
        groups=dict(sorted(groups.items())),
        latency_p50_ms=percentile(latencies, 50),
        latency_p99_ms=percentile(latencies, 99),
    )


def render(report: Report) -> str:
    """The report as a plain-text table."""

    def line(name: str, c: Counts) -> str:
        fpr = "-" if c.fpr is None else f"{c.fpr:6.1%}"
        return (
            f"{name:<24} {c.tp + c.fn:>6} {c.precision:>9.1%} {c.recall:>7.1%} "
            f"{c.f1:>7.1%} {fpr:>7}"
        )

    head = f"{'group':<24} {'gold':>6} {'precision':>9} {'recall':>7} {'F1':>7} {'FPR':>7}"
    out = [
        f"{report.guardrail} ({report.kind}, {report.rows} rows)",
        head,
        "-" * len(head),
        line("all", report.overall),
    ]
    out += [line(name, counts) for name, counts in report.groups.items()]
    out.append(f"latency: p50 {report.latency_p50_ms:.3f} ms, p99 {report.latency_p99_ms:.3f} ms")
    return "\n".join(out)

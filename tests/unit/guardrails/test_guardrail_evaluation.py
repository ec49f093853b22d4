"""The evaluation arithmetic, on rows small enough to count by hand."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gatewise.guardrails.base import Finding, Span
from gatewise.guardrails.evaluation import Counts, evaluate, percentile, render


def flag_word(text: str) -> Sequence[Finding]:
    """Flags texts containing 'bad' (category 'x') or 'evil' (category 'y')."""
    found = []
    if "bad" in text:
        found.append(Finding("g", "x", 0.9))
    if "evil" in text:
        found.append(Finding("g", "y", 0.9))
    return found


def test_counts_arithmetic() -> None:
    c = Counts(tp=3, fp=1, fn=1, tn=5)
    assert c.precision == pytest.approx(0.75)
    assert c.recall == pytest.approx(0.75)
    assert c.f1 == pytest.approx(0.75)
    assert c.fpr == pytest.approx(1 / 6)
    assert Counts().precision == 0.0 and Counts().fpr is None


def test_classification_overall_and_per_family() -> None:
    rows = [
        {"text": "bad one", "label": "attack", "family": "x"},
        {"text": "fine", "label": "attack", "family": "x"},
        {"text": "evil", "label": "attack", "family": "y"},
        {"text": "bad but benign", "label": "benign"},
        {"text": "ok", "label": "benign"},
        {"text": "ok too", "label": "benign"},
    ]
    report = evaluate(rows, flag_word, "g")
    assert (report.overall.tp, report.overall.fn, report.overall.fp, report.overall.tn) == (
        2,
        1,
        1,
        2,
    )
    assert report.overall.recall == pytest.approx(2 / 3)
    assert report.overall.fpr == pytest.approx(1 / 3)
    x, y = report.groups["x"], report.groups["y"]
    assert (x.tp, x.fn, x.fp, x.tn) == (1, 1, 1, 2)  # the benign 'bad' row is an x false positive
    assert (y.tp, y.fn, y.fp, y.tn) == (1, 0, 0, 3)
    assert y.precision == 1.0
    assert report.latency_p50_ms >= 0.0
    table = render(report)
    assert "precision" in table and "\nx " in table


def test_other_guardrails_findings_are_ignored() -> None:
    rows = [{"text": "bad", "label": "benign"}]
    report = evaluate(rows, lambda t: [Finding("other", "x", 1.0)], "g")
    assert report.overall.fp == 0 and report.overall.tn == 1


def test_role_mapping_selects_checker() -> None:
    rows = [
        {"text": "bad", "label": "attack", "family": "x", "role": "tool"},
        {"text": "bad", "label": "benign", "role": "user"},
    ]
    report = evaluate(rows, {"tool": flag_word, "user": lambda t: []}, "g")
    assert (report.overall.tp, report.overall.fp) == (1, 0)


def test_span_overlap_counts() -> None:
    def spans(text: str) -> Sequence[Finding]:
        return [
            Finding("pii", "EMAIL", 1.0, (Span(0, 5, "EMAIL"), Span(20, 25, "EMAIL"))),
            Finding("pii", "PHONE", 1.0, (Span(8, 12, "PHONE"),)),
        ]

    rows = [
        {
            "text": "x" * 30,
            "spans": [
                {"start": 3, "end": 9, "type": "EMAIL"},  # overlaps predicted 0-5
                {"start": 10, "end": 11, "type": "NAME"},  # overlaps PHONE, wrong type
            ],
        }
    ]
    report = evaluate(rows, spans, "pii")
    email, phone, name = report.groups["EMAIL"], report.groups["PHONE"], report.groups["NAME"]
    assert (email.tp, email.fp, email.fn) == (1, 1, 0)
    assert (phone.tp, phone.fp, phone.fn) == (0, 1, 0)
    assert (name.tp, name.fp, name.fn) == (0, 0, 1)
    assert (report.overall.tp, report.overall.fp, report.overall.fn) == (1, 2, 1)
    assert report.overall.fpr is None
    assert "-" in render(report)


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(list(map(float, range(1, 101))), 99) == 99.0

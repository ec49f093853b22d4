"""The shipped labelled sample (eval/guardrails/pii.jsonl) holds the detectors to their targets:
precision and recall of at least 0.95 for every type, and nothing reported on look-alike rows.

The sample is rebuilt by eval/build_pii_sample.py; bench/pii_compare.py prints the same
figures next to presidio's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatewise.guardrails.base import Span
from gatewise.guardrails.evaluation import Counts, score_spans
from gatewise.guardrails.pii import PiiDetector

SAMPLE = Path(__file__).resolve().parents[3] / "eval" / "guardrails" / "pii.jsonl"
THRESHOLD = 0.5  # what a profile rule would typically compare scores with


@pytest.fixture(scope="module")
def results() -> tuple[dict[str, Counts], int, int]:
    from gatewise.guardrails.secrets import SecretsDetector

    pii, secrets = PiiDetector(), SecretsDetector()
    counts: dict[str, Counts] = {}
    lookalike_rows = lookalike_hits = 0
    for line in SAMPLE.read_text(encoding="utf-8").split("\n"):
        if not line:
            continue
        row = json.loads(line)
        text = row["text"]
        predicted = [
            Span(m.start, m.end, m.type)
            for m in pii.matches(text) + secrets.matches(text)
            if m.score >= THRESHOLD
        ]
        gold = [Span(s["start"], s["end"], s["type"]) for s in row["spans"]]
        score_spans(gold, predicted, counts)
        if row["kind"] == "lookalike":
            lookalike_rows += 1
            lookalike_hits += len(predicted)
    return counts, lookalike_rows, lookalike_hits


def test_the_sample_is_large_enough(results: tuple[dict[str, Counts], int, int]) -> None:
    counts, lookalike_rows, _ = results
    assert lookalike_rows >= 100
    for kind, c in counts.items():
        assert c.tp + c.fn >= 12, kind


def test_every_type_meets_precision_and_recall_targets(
    results: tuple[dict[str, Counts], int, int],
) -> None:
    counts, _, _ = results
    below = {
        kind: (round(c.precision, 3), round(c.recall, 3))
        for kind, c in counts.items()
        if c.precision < 0.95 or c.recall < 0.95
    }
    assert below == {}


def test_look_alike_rows_get_no_hits(results: tuple[dict[str, Counts], int, int]) -> None:
    assert results[2] == 0

"""The detector on the shipped sample's held-out test split (eval/guardrails/injection.jsonl).

Two kinds of assertion. The floors are what the detector measured when this test
was written, less a small margin: a regression below them fails CI. The brief's
targets (recall >= 90% on English attacks, >= 70% on indirect injection, FPR <= 3%)
are not all met yet; they are pinned as a strict xfail so that meeting them is
noticed (the test then passes unexpectedly and the marker must go).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatewise.guardrails.base import Finding, TextRole
from gatewise.guardrails.evaluation import Checker, Report, evaluate
from gatewise.guardrails.injection import InjectionDetector

SAMPLE = Path(__file__).resolve().parents[3] / "eval" / "guardrails" / "injection.jsonl"
THRESHOLD = 0.5


def _checkers() -> dict[str, Checker]:
    detector = InjectionDetector()

    def make(role: TextRole) -> Checker:
        def check(text: str) -> list[Finding]:
            return [f for f in detector.detect(text, role) if f.score >= THRESHOLD]

        return check

    return {role: make(role) for role in ("user", "tool", "system", "developer", "assistant")}


@pytest.fixture(scope="module")
def report() -> Report:
    lines = SAMPLE.read_text(encoding="utf-8").split("\n")
    rows = [json.loads(line) for line in lines if line]
    test = [r for r in rows if r["split"] == "test" and r.get("lang", "en") == "en"]
    return evaluate(test, _checkers(), "prompt_injection")


def test_sample_floors(report: Report) -> None:
    assert report.overall.recall >= 0.68
    assert report.groups["indirect_injection"].recall >= 0.56
    assert report.overall.fpr is not None and report.overall.fpr <= 0.03


@pytest.mark.xfail(strict=True, reason="targets not met yet: see eval/README.md")
def test_sample_targets(report: Report) -> None:
    assert report.overall.recall >= 0.90
    assert report.groups["indirect_injection"].recall >= 0.70
    assert report.overall.fpr is not None and report.overall.fpr <= 0.03

"""Gatewise's PII and secret detectors against presidio-analyzer, on a labelled sample.

    pip install presidio-analyzer            # into the venv, for the comparison only
    PYTHONPATH=src .venv/bin/python bench/pii_compare.py [--sample eval/guardrails/pii.jsonl]

Presidio runs in patterns-only mode: ``NoOpNlpEngine`` (no spaCy model, so no
context words from the text and no PERSON/LOCATION) and its predefined pattern
recognizers, asked only for the entity types both sides know. tldextract (its
e-mail check) is kept offline by an empty suffix-list URL list. Presidio is
scored at its default threshold (0: everything it returns) and at 0.5;
Gatewise at ``--threshold`` (0.5, what a profile would typically use).

Prints precision, recall, F1 per entity type for each, how many predictions
hit look-alike rows (texts with numbers that are not PII), and latency per text
(p50/p99 over the sample rows, and on one 2 KB message built from sample rows).
Secrets and DATE_OF_BIRTH have no presidio counterpart (n/a).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gatewise.guardrails.base import Span
from gatewise.guardrails.evaluation import Counts, score_spans, total
from gatewise.guardrails.pii import PiiDetector
from gatewise.guardrails.secrets import SecretsDetector

ROOT = Path(__file__).resolve().parent.parent
PRESIDIO_TYPES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
)

Row = dict[str, Any]
Predict = Callable[[str], list[tuple[Span, float]]]


def load(path: Path) -> list[Row]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def gold_spans(row: Row) -> list[Span]:
    return [Span(s["start"], s["end"], s["type"]) for s in row["spans"]]


def ours() -> Predict:
    pii, secrets = PiiDetector(), SecretsDetector()

    def predict(text: str) -> list[tuple[Span, float]]:
        found = pii.matches(text) + secrets.matches(text)
        return [(Span(m.start, m.end, m.type), m.score) for m in found]

    return predict


def presidio() -> Predict | None:
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    try:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NoOpNlpEngine
    except ImportError:
        print("presidio-analyzer is not installed: comparing nothing", file=sys.stderr)
        return None
    engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    entities = list(PRESIDIO_TYPES)

    def predict(text: str) -> list[tuple[Span, float]]:
        results = analyzer.analyze(text=text, language="en", entities=entities)
        return [(Span(r.start, r.end, r.entity_type), r.score) for r in results]

    return predict


def run(predict: Predict, rows: list[Row]) -> tuple[list[list[tuple[Span, float]]], list[float]]:
    """Predictions per row and the time each took (ms), after one warm-up pass."""
    for row in rows[:50]:
        predict(row["text"])
    outputs, times = [], []
    for row in rows:
        t0 = time.perf_counter()
        out = predict(row["text"])
        times.append((time.perf_counter() - t0) * 1000)
        outputs.append(out)
    return outputs, times


def evaluate(
    rows: list[Row], outputs: list[list[tuple[Span, float]]], threshold: float, types: set[str]
) -> tuple[dict[str, Counts], int]:
    counts: dict[str, Counts] = {}
    lookalike_hits = 0
    for row, out in zip(rows, outputs, strict=True):
        predicted = [s for s, score in out if score >= threshold and s.type in types]
        gold = [s for s in gold_spans(row) if s.type in types]
        score_spans(gold, predicted, counts)
        if row.get("kind") == "lookalike":
            lookalike_hits += len(predicted)
    return counts, lookalike_hits


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def message_2kb(rows: list[Row]) -> str:
    """About 2 KB of chat: sample rows (a few with PII) joined with filler prose."""
    filler = (
        "Thanks for the quick reply, the deployment went fine but the dashboard still "
        "shows the old numbers after the cache expired; could you have a look today? "
    )
    parts: list[str] = []
    for row in rows[::37]:
        parts.append(filler)
        parts.append(row["text"] + " ")
        if sum(map(len, parts)) >= 2048:
            break
    return "".join(parts)[:2048]


def time_text(predict: Predict, text: str, repeat: int = 2000) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        predict(text)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), percentile(times, 0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=Path, default=ROOT / "eval/guardrails/pii.jsonl")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    rows = load(args.sample)
    all_types = {s["type"] for row in rows for s in row["spans"]}

    systems: dict[str, tuple[Predict, list[float]]] = {"gatewise": (ours(), [args.threshold])}
    other = presidio()
    if other is not None:
        systems["presidio"] = (other, [0.0, 0.5])

    table: dict[str, dict[str, Counts]] = {}
    print(f"sample: {args.sample} ({len(rows)} rows)\n")
    for label, (predict, thresholds) in systems.items():
        outputs, times = run(predict, rows)
        p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
        t50, t99 = time_text(predict, message_2kb(rows), 300 if label == "presidio" else 2000)
        types = all_types if label == "gatewise" else set(PRESIDIO_TYPES)
        for threshold in thresholds:
            name = f"{label}@{threshold:g}"
            counts, hits = evaluate(rows, outputs, threshold, types)
            table[name] = counts
            overall = total(counts)
            print(
                f"{name}: look-alike hits {hits}; per text p50 {p50:.3f} ms p99 {p99:.3f} ms; "
                f"2 KB message p50 {t50:.3f} ms p99 {t99:.3f} ms; micro P {overall.precision:.3f} "
                f"R {overall.recall:.3f} F1 {overall.f1:.3f}"
            )
    names = list(table)
    print()
    header = f"{'type':24}" + "".join(f"{n:>30}" for n in names)
    print(header + "\n" + " " * 24 + "".join(f"{'P     R     F1   exact':>30}" for _ in names))
    for kind in sorted(all_types):
        line = f"{kind:24}"
        for n in names:
            c = table[n].get(kind)
            if c is None or (n.startswith("presidio") and kind not in PRESIDIO_TYPES):
                line += f"{'n/a':>30}"
            else:
                exact = c.exact / c.tp if c.tp else 0.0
                line += f"{c.precision:>12.3f}{c.recall:>6.3f}{c.f1:>6.3f}{exact:>6.2f}"
        print(line)


if __name__ == "__main__":
    main()

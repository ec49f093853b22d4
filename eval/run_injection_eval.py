"""Print the injection detector's figures on the shipped sample.

    PYTHONPATH=src python eval/run_injection_eval.py [dev|test] [--lang en|mixed|all]

Prints the evaluation table (precision, recall, F1, FPR per family, latency),
then the p50/p99 latency on 2 KB prompts made from the sample's texts.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from gatewise.guardrails.base import Finding, TextRole
from gatewise.guardrails.evaluation import Checker, evaluate, percentile, render
from gatewise.guardrails.injection import InjectionDetector

SAMPLE = Path(__file__).resolve().parent / "guardrails" / "injection.jsonl"
THRESHOLD = 0.5


def checkers(detector: InjectionDetector) -> dict[str, Checker]:
    def make(role: TextRole) -> Checker:
        def check(text: str) -> list[Finding]:
            return [f for f in detector.detect(text, role) if f.score >= THRESHOLD]

        return check

    return {role: make(role) for role in ("user", "tool", "system", "developer", "assistant")}


def load(split: str, lang: str) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").split("\n") if line]
    return [
        r for r in rows if r["split"] == split and (lang == "all" or r.get("lang", "en") == lang)
    ]


def latency_2kb(check: Checker, texts: list[str], n: int = 2000) -> tuple[float, float]:
    """p50 and p99 in ms of ``check`` over ``n`` 2 KB prompts made of ``texts``."""
    rng = random.Random(7)
    prompts = []
    for _ in range(n):
        parts: list[str] = []
        while sum(map(len, parts)) < 2048:
            parts.append(rng.choice(texts))
        prompts.append("\n".join(parts)[:2048])
    check(prompts[0])  # warm up
    times = []
    for prompt in prompts:
        start = time.perf_counter()
        check(prompt)
        times.append((time.perf_counter() - start) * 1000)
    return percentile(times, 50), percentile(times, 99)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("split", nargs="?", default="test")
    parser.add_argument("--lang", default="all", choices=["en", "mixed", "all"])
    args = parser.parse_args()
    by_role = checkers(InjectionDetector())
    rows = load(args.split, args.lang)
    print(render(evaluate(rows, by_role, "prompt_injection")))
    benign = [str(r["text"]) for r in load(args.split, "all") if r["label"] == "benign"]
    every = [str(r["text"]) for r in load(args.split, "all")]
    for name, texts in (("benign", benign), ("mixed", every)):
        p50, p99 = latency_2kb(by_role["user"], texts)
        print(f"2 KB prompts built from {name} rows: p50 {p50:.3f} ms, p99 {p99:.3f} ms")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Guardrail CPU per request, in process: the ``standard`` profile's input rules over the
texts of a request, with the screen (guardrails/screen.py) and without it.

    PYTHONPATH=src .venv/bin/python bench/guardrail_cost.py [--rounds 20000]

Two request shapes: the bench's own (``run.request_bodies``: a short system prompt and a
short user message) and, one at a time, the benign user rows of
eval/guardrails/injection.jsonl (every text new: no memory of verdicts). What
``bench/compare.py --b standard-cold`` measures end to end, without the server around it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

from gatewise.config.guardrails import GuardrailsConfig
from gatewise.guardrails.rules import Profile, inspect
from gatewise.guardrails.screen import shared_screen
from gatewise.guardrails.setup import build_guardrails

ROOT = Path(__file__).resolve().parent.parent
BENCH = [
    ("You are a concise assistant.", "system"),
    ("Write one sentence about load testing.", "user"),
]


async def per_request(profile: Profile, texts: list[tuple[str, str]], rounds: int) -> float:
    """Microseconds to inspect ``texts`` once (as ``steps._inspect_input`` does)."""
    rules = profile.input_rules
    screening = profile.input_screening
    start = time.perf_counter()
    for _ in range(rounds):
        for index, (text, role) in enumerate(texts):
            chosen = rules if screening is None else screening.rules_for(rules, text, role)
            if chosen:
                await inspect(chosen, text, role, "input", index)  # type: ignore[arg-type]
    return (time.perf_counter() - start) / rounds * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    args = parser.parse_args()
    screen = shared_screen()
    if screen is None or not screen.wait(120):
        raise SystemExit("hyperscan is not installed: nothing to compare")
    built = build_guardrails(GuardrailsConfig(default="standard", memory=0), lambda v: v)
    screened = built.profile("standard")
    full = replace(screened, input_screening=None)
    lines = (ROOT / "eval" / "guardrails" / "injection.jsonl").read_text("utf-8").split("\n")
    rows = [json.loads(line) for line in lines if line]
    benign = [(r["text"], "user") for r in rows if r["label"] == "benign" and r["role"] == "user"]
    rounds_rows = max(1, args.rounds // 200)
    for name, texts, rounds in (
        ("bench request (system + user)", BENCH, args.rounds),
        (f"{len(benign)} benign user rows, all at once", benign, rounds_rows),
    ):
        without = await per_request(full, texts, rounds)
        with_screen = await per_request(screened, texts, rounds)
        print(f"{name}: {without:9.1f} us without the screen, {with_screen:9.1f} us with it")


if __name__ == "__main__":
    asyncio.run(main())

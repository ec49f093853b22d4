"""Print the layered prompt-injection detector's figures (fast tier + model tier)
beside the fast tier alone, on one split of the shipped sample.

    PYTHONPATH=src python eval/run_layered_eval.py [dev|test] [--lang en|mixed|all]
        [--train] [--model-threshold P]

The model is loaded from ``$GATEWISE_MODEL_DIR/injection-model`` (or
``~/.cache/gatewise/injection-model``); ``--train``, or a folder without a model,
trains it there first (``python -m gatewise.guardrails.injection.train``, about a
minute on 2 cores). Both detectors are built as the gateway builds them:
``build_guardrails(GuardrailsConfig(model_tier=...))`` and the ``prompt_injection``
rules of the ``standard`` profile, run through ``rules.inspect``, so the rule's
threshold and the model tier's ``model_threshold`` both apply.

Prints, per detector, the evaluation table (precision, recall, F1, FPR per family)
and the p50/p99 latency per 2 KB prompt made from the split's texts (the layered
one's model runs in a worker thread, as in the gateway).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from run_injection_eval import SAMPLE, latency_2kb, load  # this folder's sibling script

from gatewise.commands.guardrails import rule_checkers
from gatewise.config.guardrails import GuardrailsConfig
from gatewise.guardrails.evaluation import Report, evaluate, render
from gatewise.guardrails.rules import Rule
from gatewise.guardrails.setup import build_guardrails


def ensure_model(retrain: bool) -> Path:
    from gatewise.guardrails.injection.model import CLASSIFIER_FILE, default_dir
    from gatewise.guardrails.injection.train import train

    folder = default_dir()
    if retrain or not (folder / CLASSIFIER_FILE).is_file():
        print(f"training the model into {folder} ...", file=sys.stderr)
        report = train(folder, exclude=SAMPLE)
        print(json.dumps(report["validation"]), file=sys.stderr)
    return folder


def injection_rules(config: GuardrailsConfig) -> list[Rule]:
    """The standard profile's prompt_injection input rules, built as the gateway does."""
    rails = build_guardrails(config, lambda ref: ref)
    rules = [r for r in rails.profile("standard").input_rules if r.name == "prompt_injection"]
    assert rules, "the standard profile has no prompt_injection rule"
    return rules


def summary(name: str, report: Report) -> str:
    indirect = report.groups.get("indirect_injection")
    overall = report.overall
    fpr = overall.fpr or 0.0
    parts = [
        f"{name}: recall {overall.recall:.1%}",
        f"indirect {indirect.recall:.1%}" if indirect else "indirect -",
        f"FPR {fpr:.1%} ({overall.fp}/{overall.fp + overall.tn})",
        f"precision {overall.precision:.1%}",
    ]
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("split", nargs="?", default="test", choices=["dev", "test"])
    parser.add_argument("--lang", default="en", choices=["en", "mixed", "all"])
    parser.add_argument("--train", action="store_true", help="retrain the model first")
    parser.add_argument("--model-threshold", type=float, default=None)
    parser.add_argument("--latency-prompts", type=int, default=300)
    args = parser.parse_args()

    ensure_model(args.train)
    layered_config = GuardrailsConfig(model_tier=True)
    if args.model_threshold is not None:
        layered_config = GuardrailsConfig(model_tier=True, model_threshold=args.model_threshold)
    rows = load(args.split, args.lang)
    texts = [str(r["text"]) for r in load(args.split, "all")]
    benign = [str(r["text"]) for r in load(args.split, "all") if r["label"] == "benign"]
    lines = []
    for name, config in (
        ("fast tier alone", GuardrailsConfig()),
        (
            f"layered (model_threshold {layered_config.model_threshold or 'of the classifier'})",
            layered_config,
        ),
    ):
        found = rule_checkers(injection_rules(config), "input")
        report = evaluate(rows, found, "prompt_injection")
        print(f"== {name}, {args.split} split, lang {args.lang}")
        print(render(report))
        for label, pool in (("benign", benign), ("mixed", texts)):
            p50, p99 = latency_2kb(found["user"], pool, args.latency_prompts)
            print(f"2 KB prompts built from {label} rows: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        print()
        lines.append(summary(name, report))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Hit precision and recall of the semantic cache on eval/semantic_cache/pairs.jsonl,
with the real int8 MiniLM encoder and the lexical guard, the way the gateway decides.

For each split, every distinct cached question ``a`` is stored in one partition of
the cache's own index with its guard signature; each new question ``b`` is then
looked up: the nearest entry is a *hit* when ``semantic_guard.accept`` takes it
(a copy, same content words, at ``copy_threshold``; a rewording at ``threshold``;
numbers, negation or a changed word of a near copy refused). A hit is *correct*
when that entry is the pair's own ``a`` and one answer serves both
(``same_answer``), or when it is ``b`` itself, word for word (some traps' ``b`` is
another pair's ``a``: its own reply is the right answer). Any other hit is a wrong
answer served. Precision = correct hits / hits; recall = correct hits on
should-hit pairs / should-hit pairs.

The thresholds are chosen on ``dev`` only: over a grid, the most recall whose
precision is at least ``--min-precision`` (default 0.97: two points of margin over
the 0.95 aim, as one wrong hit moves dev's precision by about 1.3 points), ties to
the higher thresholds; ``test`` is reported at that choice. The cosine-only cache
(``guard: false``) is reported beside it, chosen the same way::

    python eval/build_semantic_cache_sample.py      # once
    python eval/run_semantic_cache_eval.py [--model-dir DIR] [--min-precision 0.97]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from gatewise.cache.embedder import LocalEmbedder, find_model_dir
from gatewise.cache.semantic_guard import Signature, accept, signature
from gatewise.cache.semantic_index import SemanticIndex

SAMPLE = Path(__file__).resolve().parent / "semantic_cache" / "pairs.jsonl"
GRID = [round(0.70 + 0.01 * i, 2) for i in range(30)]
COPY_GRID = [0.5, 0.6, 0.7, 0.8, 0.9]
SHOULD_HIT = ("paraphrase", "near_repeat")

Found = tuple[str, Signature, float]


def nearest(embedder: LocalEmbedder, rows: list[dict[str, Any]]) -> list[Found]:
    """For each row: the cached question nearest to its ``b``, its signature and the
    similarity."""
    index: SemanticIndex[tuple[Signature, str]] = SemanticIndex(
        embedder.dimensions, max_entries=10_000, max_per_partition=10_000
    )
    for question in sorted({row["a"] for row in rows}):
        vector = embedder.embed_sync(question)
        index.add("eval", vector, (signature(question), question), expires=1e18, now=0.0)
    found: list[Found] = []
    for row in rows:
        hit = index.search("eval", embedder.embed_sync(row["b"]), -1.0, now=0.0)
        assert hit is not None
        (stored, question), score = hit
        found.append((question, stored, score))
    return found


def _same(x: str, y: str) -> bool:
    return x.strip().casefold() == y.strip().casefold()


def figures(
    rows: list[dict[str, Any]],
    found: list[Found],
    threshold: float,
    copy_threshold: float | None,
) -> dict[str, Any]:
    """``copy_threshold`` None: cosine alone (the guard off)."""
    hits: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for row, (question, stored, score) in zip(rows, found, strict=True):
        if copy_threshold is None:
            hit = score >= threshold
        else:
            query = signature(row["b"])
            hit = accept(query, stored, score, threshold=threshold, copy_threshold=copy_threshold)
        if not hit:
            continue
        kind = row["category"]
        hits[kind] += 1
        correct[kind] += int(
            (row["same_answer"] and question == row["a"]) or _same(question, row["b"])
        )
    sizes = Counter(row["category"] for row in rows)
    should = sum(sizes[kind] for kind in SHOULD_HIT)
    total, good = sum(hits.values()), sum(correct.values())
    per_kind = {}
    for kind in sorted(sizes):
        entry: dict[str, Any] = {"pairs": sizes[kind], "hits": hits[kind], "correct": correct[kind]}
        if kind in SHOULD_HIT:
            entry["precision"] = round(correct[kind] / hits[kind], 3) if hits[kind] else 1.0
            entry["recall"] = round(correct[kind] / sizes[kind], 3)
        else:  # a trap: every hit but an identical question is a wrong answer
            entry["wrong_hit_rate"] = round((hits[kind] - correct[kind]) / sizes[kind], 3)
        per_kind[kind] = entry
    return {
        "threshold": threshold,
        "copy_threshold": copy_threshold,
        "pairs": len(rows),
        "should_hit": should,
        "hits": total,
        "correct_hits": good,
        "precision": round(good / total, 4) if total else 1.0,
        "recall": round(sum(correct[k] for k in SHOULD_HIT) / should, 4) if should else 0.0,
        "by_kind": per_kind,
    }


def choose(curve: list[dict[str, Any]], min_precision: float) -> dict[str, Any]:
    good = [p for p in curve if p["precision"] >= min_precision]
    if not good:
        return max(curve, key=lambda p: (p["precision"], p["recall"]))
    return max(good, key=lambda p: (p["recall"], p["threshold"], p["copy_threshold"] or 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    parser.add_argument("--min-precision", type=float, default=0.97)
    args = parser.parse_args()
    embedder = LocalEmbedder(find_model_dir(args.model_dir))
    rows = [json.loads(line) for line in args.sample.read_text().splitlines() if line.strip()]
    dev = [row for row in rows if row["split"] == "dev"]
    test = [row for row in rows if row["split"] == "test"]
    dev_found, test_found = nearest(embedder, dev), nearest(embedder, test)
    report: dict[str, Any] = {}
    for name, copies in (("guard", COPY_GRID), ("cosine_only", [None])):
        curve = [figures(dev, dev_found, t, c) for t in GRID for c in copies]
        chosen = choose(curve, args.min_precision)
        t, c = chosen["threshold"], chosen["copy_threshold"]
        report[name] = {"dev": chosen, "test": figures(test, test_found, t, c)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

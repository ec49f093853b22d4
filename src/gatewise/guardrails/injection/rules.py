"""Scored pattern sets: how one attack family turns regex matches into a score.

Why scores and not a hit list: single words (``ignore``, ``system``, ``DAN``)
are everywhere in ordinary prompts; what marks an attack is a *phrase* (``ignore
all previous instructions``) or several weaker signs together (a persona, a
claim to be free of rules, a demand never to refuse). Each rule has a weight in
(0, 1]; a family's score is the noisy-OR of its distinct matched rules,
``1 - prod(1 - w)``, so one strong phrase (0.8) crosses the 0.5 threshold alone,
two weak signs (0.3 and 0.35) reach 0.55 together, and one weak sign never does.

Speed: every family first checks its *gates*, plain substrings of which at
least one must occur (``in`` on a str runs at C speed), so most benign prompts
never reach a regex. The rules of a family are compiled into one alternation of
named groups and scanned once. Patterns are written for lower-cased text, use
bounded repetition only and no nested unbounded quantifiers (no catastrophic
backtracking; the tests fuzz this).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Up to N whole words between two phrase parts (words and separators alternate,
#: so the split is unambiguous and the match stays linear).
MAX_MATCHES = 64
#: A phrase in quotes inside a text that talks *about* attacks is a mention, not
#: a use ("text such as 'ignore previous instructions' is an attack"): its
#: weight is cut to this share. Quoting alone is not enough (attackers quote too).
MENTION_SHARE = 0.4
_MENTION = re.compile(
    r"\b(?:prompt injections?|jailbreaks?|attacks?|attackers?|such as|e\.g\.|for example|"
    r"phrases? like|"
    r"detect(?:s|ed|ion|or)?|classifier|defen[cs]es?|mitigations?)\b"
)
_QUOTES = "'\"`\u201c\u201d\u2018\u2019"


def _quoted(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 2) : start]
    after = text[end : end + 2]
    return any(q in before for q in _QUOTES) and any(q in after for q in _QUOTES)


def gap(n: int) -> str:
    """Regex: a separator, then up to ``n`` more words each followed by a separator."""
    return rf"\W{{1,4}}(?:\w+\W{{1,4}}){{0,{n}}}?"


@dataclass(frozen=True, slots=True)
class Rule:
    """One pattern and what it weighs. ``roles``: only for these roles (None: all)."""

    pattern: str
    weight: float
    roles: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Scan:
    """A family's score on one view, and the view ranges that earned it."""

    score: float
    spans: tuple[tuple[int, int], ...]


NOTHING = Scan(0.0, ())


class Family:
    """A named set of rules, compiled once."""

    def __init__(self, name: str, rules: Sequence[Rule], gates: Sequence[str] = ()) -> None:
        self.name = name
        # Heavier rules first: where two rules match at the same place, the
        # alternation reports the first, and the stronger one should win.
        self.rules = tuple(sorted(rules, key=lambda r: -r.weight))
        self.gates = tuple(gates)
        # Rules that start at a word (``\b...``) are tried only where a word
        # starts: the lookbehind rejects the ~80% of positions inside words
        # before any alternative is tried (measured: about 6x faster on 2 KB).
        words = [i for i, r in enumerate(self.rules) if r.pattern.startswith(r"\b")]
        others = [i for i in range(len(self.rules)) if i not in words]
        self.regexes = tuple(
            re.compile(
                prefix
                + "(?:"
                + "|".join(f"(?P<r{i}>{self.rules[i].pattern})" for i in group)
                + ")",
                re.MULTILINE,
            )
            for prefix, group in ((r"(?<!\w)(?=\w)", words), ("", others))
            if group
        )

    def scan(self, text: str, role: str) -> Scan:
        """Score ``text`` (lower-cased) as written by ``role``."""
        if self.gates and not any(g in text for g in self.gates):
            return NOTHING
        hit: dict[int, tuple[int, int]] = {}
        spans: list[tuple[int, int]] = []
        matches = (m for regex in self.regexes for m in regex.finditer(text))
        for n, m in enumerate(matches):
            if n >= MAX_MATCHES:
                break
            name = m.lastgroup
            if name is None:
                continue
            index = int(name[1:])
            rule = self.rules[index]
            if rule.roles is not None and role not in rule.roles:
                continue
            if index not in hit:
                hit[index] = m.span()
            if len(spans) < 8:
                spans.append(m.span())
        if not hit:
            return NOTHING
        mention: bool | None = None
        miss = 1.0
        for index, (start, end) in hit.items():
            weight = self.rules[index].weight
            if _quoted(text, start, end):
                if mention is None:
                    mention = _MENTION.search(text) is not None
                if mention:
                    weight *= MENTION_SHARE
            miss *= 1.0 - weight
        return Scan(1.0 - miss, tuple(spans))

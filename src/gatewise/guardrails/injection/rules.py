"""Scored pattern sets: how one attack family turns regex matches into a score.

Why scores and not a hit list: single words (``ignore``, ``system``, ``DAN``)
are everywhere in ordinary prompts; what marks an attack is a *phrase* (``ignore
all previous instructions``) or several weaker signs together (a persona, a
claim to be free of rules, a demand never to refuse). Each rule has a weight in
(0, 1]; a family's score is the noisy-OR of its distinct matched rules,
``1 - prod(1 - w)``, so one strong phrase (0.8) crosses the 0.5 threshold alone,
two weak signs (0.3 and 0.35) reach 0.55 together, and one weak sign never does.

Speed: every rule has *anchors*, literals its every match contains, found by
reading the regex (``anchors``); a rule runs only when one of its anchors is in
the text, so a benign prompt reaches few regexes. A rule that runs is searched
once (its first match is its evidence). Patterns are written for lower-cased text, use
bounded repetition only and no nested unbounded quantifiers (no catastrophic
backtracking; the tests fuzz this).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .anchors import Present, admits, anchors

#: A phrase in quotes inside a text that talks *about* attacks is a mention, not
#: a use ("text such as 'ignore previous instructions' is an attack"): its
#: weight is cut to this share. Quoting alone is not enough (attackers quote too).
MENTION_SHARE = 0.4
_MENTION = re.compile(
    r"\b(?:prompt injections?|jailbreaks?|attacks?|attackers?|such as|e\.g\.|for example|"
    r"phrases? like|"
    r"detect(?:s|ed|ion|or)?|classifier|defen[cs]es?|mitigations?)\b"
)
#: Candidate starts tried per rule before giving up (bounds the work on a text
#: full of near misses such as ``xignore`` ``xignore``...).
MAX_TRIES = 64
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


def _search(regex: re.Pattern[str], text: str, word_start: bool) -> re.Match[str] | None:
    """The first match, starting at a word start if ``word_start``."""
    pos = 0
    for _ in range(MAX_TRIES):
        m = regex.search(text, pos)
        if m is None or not word_start:
            return m
        start = m.start()
        before = start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")
        if not before and start < len(text) and (text[start].isalnum() or text[start] == "_"):
            return m
        pos = start + 1
    return None


class Family:
    """A named set of rules, compiled once, each with its anchors (see ``anchors``)."""

    def __init__(self, name: str, rules: Sequence[Rule]) -> None:
        self.name = name
        self.rules = tuple(sorted(rules, key=lambda r: -r.weight))
        # A leading ``\b`` hides the pattern's first characters from the regex
        # engine's fast scan for where a match may start; it is dropped from the
        # compiled pattern and checked by hand at each candidate start instead
        # (measured: 1.5-25x faster per rule on 2 KB).
        self.regexes = tuple(
            re.compile(r.pattern.removeprefix(r"\b"), re.MULTILINE) for r in self.rules
        )
        self.word_start = tuple(r.pattern.startswith(r"\b") for r in self.rules)
        self.keys = tuple(anchors(r.pattern) for r in self.rules)

    def scan(self, text: str, role: str, present: Present | None = None) -> Scan:
        """Score ``text`` (lower-cased) as written by ``role``. ``present``: the
        anchors found in ``text``; rules with none of theirs there are skipped."""
        hit: list[tuple[int, int, int]] = []
        for index, rule in enumerate(self.rules):
            if rule.roles is not None and role not in rule.roles:
                continue
            if present is not None and not admits(self.keys[index], present):
                continue
            m = _search(self.regexes[index], text, self.word_start[index])
            if m is not None:
                hit.append((index, m.start(), m.end()))
        if not hit:
            return NOTHING
        mention: bool | None = None
        miss = 1.0
        for index, start, end in hit:
            weight = self.rules[index].weight
            if _quoted(text, start, end):
                if mention is None:
                    mention = _MENTION.search(text) is not None
                if mention:
                    weight *= MENTION_SHARE
            miss *= 1.0 - weight
        return Scan(1.0 - miss, tuple((s, e) for _, s, e in hit[:8]))

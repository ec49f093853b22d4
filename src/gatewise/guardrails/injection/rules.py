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
the text (one index for all families: ``Rulebook``), so a benign prompt reaches
few regexes. A rule that runs is not searched over the whole text: its longest
match is bounded from the regex and the text (``anchors.width``), so it is
tried only at the occurrences of the literals its matches start with
(``_anchored``) or in the stretches near its anchors' occurrences
(``_windowed``), with the text cut past the longest match; either finds the
same first match as a whole-text search (the tests compare them). A rule's
first match is its evidence. Patterns are written for lower-cased text, use
bounded repetition only and no nested unbounded quantifiers (no catastrophic
backtracking; the tests fuzz this).
"""

from __future__ import annotations

import re
import re._constants as sre_constants  # type: ignore[import-not-found]
import re._parser as sre_parse  # type: ignore[import-not-found]
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from operator import or_

from .anchors import anchors, leading, width
from .keys import SUBSTRING, Keyed, Present, admits

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


def _windowed(
    regex: re.Pattern[str],
    word_start: bool,
    sets: tuple[frozenset[str], ...],
    keyed: Keyed,
    most: int,
) -> re.Match[str] | None:
    """``_search``'s first match, found by searching only where a match can be:
    around the occurrences of the rule's anchors.

    Every match is at most ``most`` characters long and contains an occurrence of
    a key of each anchor set, so it starts at most ``most`` characters before an
    occurrence of the set with the fewest, and near enough to one of every other
    set. Each such stretch of starts is searched with the text cut ``most + 1``
    characters after its last start: a match starting there ends, and every
    ``\\b`` or ``$`` it checks sits, before the cut, so the engine finds exactly
    the match it finds in the whole text. The stretches are searched in order,
    so the first match found is the first in the text. (``MAX_TRIES`` counts the
    misplaced candidates inside the stretches only: those elsewhere hold no
    anchor and cannot be a match.)
    """
    text = keyed.text
    size = len(text)
    found = sorted((keyed.among(keys) for keys in sets), key=len)
    base, others = found[0], found[1:]
    starts: list[tuple[int, int]] = []
    for at in base:
        first, last = at - most, at
        for other in others:
            # An occurrence of this set within the match: in [first, last + most].
            i = bisect_left(other, first)
            if i == len(other) or other[i] > last + most:
                break
            j = bisect_right(other, last + most) - 1
            first = max(first, other[i] - most)
            last = min(last, other[j])
            if first > last:
                break
        else:
            starts.append((max(first, 0), last))
    if len(starts) > 1:
        starts.sort()
    tries = 0
    index = 0
    while index < len(starts):
        first, last = starts[index]
        index += 1
        # Stretches closer than a match's length are searched as one.
        while index < len(starts) and starts[index][0] <= last + most:
            last = max(last, starts[index][1])
            index += 1
        end = min(size, last + most + 1)
        pos = first
        while True:
            m = regex.search(text, pos, end)
            if m is None or m.start() > last:
                break
            start = m.start()
            if not word_start:
                return m
            before = start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")
            if not before and start < size and (text[start].isalnum() or text[start] == "_"):
                return m
            tries += 1
            if tries >= MAX_TRIES:
                return None
            pos = start + 1
    return None


def _literal_start(pattern: str) -> bool:
    items = list(sre_parse.parse(pattern))
    return bool(items) and items[0][0] is sre_constants.LITERAL


_PRUNE = 32


def _anchored(
    regex: re.Pattern[str],
    lead: frozenset[str],
    sets: tuple[frozenset[str], ...] | None,
    keyed: Keyed,
    most: int | None,
) -> re.Match[str] | None:
    """``_search``'s first match for a rule whose every match starts with one of
    the keys ``lead`` (see ``leading``): the regex is tried at their
    occurrences only, in order (and only where an occurrence of each anchor set is
    near enough to fit in one match), with the text cut ``most + 1`` characters
    on: the match found there is the one the whole-text search finds."""
    starts = keyed.among(lead)
    if not starts:
        return None
    text = keyed.text
    size = len(text)
    # With many starts, those with no occurrence of some anchor set in reach are
    # skipped (finding the occurrences costs more than a few failed tries).
    others = [keyed.among(keys) for keys in sets] if sets and len(starts) > _PRUNE else []
    for at in starts:
        end = size if most is None else min(size, at + most + 1)
        for other in others:
            i = bisect_left(other, at)
            if i == len(other) or other[i] >= end:
                break
        else:
            m = regex.match(text, at, end)
            if m is not None:
                return m
    return None


def _admission(
    sets: tuple[frozenset[str], ...] | None, lead: frozenset[str] | None
) -> tuple[frozenset[str], ...] | None:
    if lead is None or any(k[0] == SUBSTRING for k in lead):
        return sets
    return (*(sets or ()), lead)


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
        self.widths = tuple(width(r.pattern.removeprefix(r"\b")) for r in self.rules)
        # For a rule whose matches start at a word start: the keys one of which
        # every match starts with (its candidate starts are their occurrences).
        # (Not for a pattern that starts with a literal character anywhere: the
        # engine finds those starts faster itself.)
        self.leads = tuple(
            leading(r.pattern.removeprefix(r"\b"), r.pattern.startswith(r"\b"))
            if r.pattern.startswith(r"\b") or not _literal_start(r.pattern)
            else None
            for r in self.rules
        )
        # What admits a rule: its anchor sets, and its leading keys when they
        # are all prefix keys (``present`` finds those).
        self.admission = tuple(
            _admission(sets, lead) for sets, lead in zip(self.keys, self.leads, strict=True)
        )
        # Inverted index of the anchors: key -> (rule, bit of the set it is in).
        self._index: dict[str, list[tuple[int, int]]] = {}
        self._full: dict[int, int] = {}
        self._always: list[int] = []
        for index, sets in enumerate(self.admission):
            if sets is None:
                self._always.append(index)
                continue
            self._full[index] = (1 << len(sets)) - 1
            for bit, keys in enumerate(sets):
                for key in keys:
                    self._index.setdefault(key, []).append((index, 1 << bit))
        self._indexed = frozenset(self._index)

    def admitted(self, found: Present) -> list[int]:
        """The rules whose every anchor set has a key in ``found``, in order."""
        got: dict[int, int] = {}
        index = self._index
        for key in self._indexed.intersection(found):
            for rule, bit in index[key]:
                got[rule] = got.get(rule, 0) | bit
        full = self._full
        out = [rule for rule, bits in got.items() if bits == full[rule]]
        out += self._always
        out.sort()
        return out

    def first(self, index: int, text: str, keyed: Keyed | None) -> re.Match[str] | None:
        """Rule ``index``'s first match in ``text`` (``keyed``: the same text, keyed)."""
        regex = self.regexes[index]
        if keyed is None:
            return _search(regex, text, self.word_start[index])
        sets = self.keys[index]
        lead = self.leads[index]
        if lead is not None:
            # (The longest space run costs a pass: without it, no cut.)
            bound = self.widths[index]
            most = bound.at(keyed) if not bound.spaces else None
            return _anchored(regex, lead, sets, keyed, most)
        most = self.widths[index].at(keyed) if sets else None
        if sets is None or most is None or 4 * most >= len(text):
            return _search(regex, text, self.word_start[index])
        return _windowed(regex, self.word_start[index], sets, keyed, most)

    def scan(
        self,
        text: str,
        role: str,
        present: Present | Keyed | None = None,
        admitted: Sequence[int] | None = None,
    ) -> Scan:
        """Score ``text`` (lower-cased) as written by ``role``. ``present``: the
        anchors found in ``text`` (a ``Keyed`` for it: rules are then searched
        only around their anchors); rules with none of theirs there are skipped.
        ``admitted``: those rules, if already known (``Rulebook``)."""
        keyed: Keyed | None = None
        if isinstance(present, Keyed):
            keyed = present
            indices: Sequence[int] = (
                admitted if admitted is not None else self.admitted(present.keys)
            )
        elif present is not None:
            found = present
            indices = [i for i in range(len(self.rules)) if admits(self.keys[i], found)]
        else:
            indices = range(len(self.rules))
        hit: list[tuple[int, int, int]] = []
        for index in indices:
            rule = self.rules[index]
            if rule.roles is not None and role not in rule.roles:
                continue
            m = self.first(index, text, keyed)
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


#: Up to this many keys, rules are admitted by walking the keys' entries.
_FEW_KEYS = 40


class Rulebook:
    """The anchor index of several families at once: which of their rules a
    text admits, found with one pass over the text's keys."""

    def __init__(self, families: Sequence[Family]) -> None:
        self.families = tuple(families)
        self._index: dict[str, list[tuple[int, int]]] = {}
        self._full: dict[int, int] = {}
        self._always: list[list[int]] = []
        for number, family in enumerate(self.families):
            always: list[int] = []
            for index, sets in enumerate(family.admission):
                if sets is None:
                    always.append(index)
                    continue
                rule = number << 12 | index
                self._full[rule] = (1 << len(sets)) - 1
                for bit, keys in enumerate(sets):
                    for key in keys:
                        self._index.setdefault(key, []).append((rule, 1 << bit))
            self._always.append(always)
        self._indexed = frozenset(self._index)
        # The same as bit masks: one bit per (rule, anchor set); a key's mask has
        # the bits of the sets it is in, a rule's the bits of all its sets.
        self._key_masks: dict[str, int] = {}
        self._rule_masks: list[list[tuple[int, int]]] = []
        slot = 0
        for family in self.families:
            masks: list[tuple[int, int]] = []
            for index, sets in enumerate(family.admission):
                if sets is None:
                    continue
                mask = 0
                for keys in sets:
                    for key in keys:
                        self._key_masks[key] = self._key_masks.get(key, 0) | 1 << slot
                    mask |= 1 << slot
                    slot += 1
                masks.append((index, mask))
            self._rule_masks.append(masks)

    def admitted(self, found: Present) -> list[list[int]]:
        """For each family, in order, the rules whose every anchor set has a key in ``found``."""
        hits = self._indexed.intersection(found)
        if len(hits) > _FEW_KEYS:
            # Many keys (a long text): OR their masks, then test every rule once.
            have = reduce(or_, map(self._key_masks.__getitem__, hits), 0)
            return [
                sorted(always + [i for i, mask in masks if have & mask == mask])
                for masks, always in zip(self._rule_masks, self._always, strict=True)
            ]
        got: dict[int, int] = {}
        index = self._index
        for key in hits:
            for rule, bit in index[key]:
                got[rule] = got.get(rule, 0) | bit
        out = [list(always) for always in self._always]
        full = self._full
        for rule, bits in got.items():
            if bits == full[rule]:
                out[rule >> 12].append(rule & 0xFFF)
        for rules in out:
            rules.sort()
        return out

"""Anchors: the literal strings a rule cannot match without.

Why: a rule's regex costs a pass over the whole text, and on a benign prompt
almost every rule fails. Each regex is read once (by the standard library's own
regex parser) to find a small set of literal strings at least one of which every
match must contain (``\\b(?:ignore|disregard) ... instructions?`` needs
``ignore`` or ``disregard``, and also ``instruction``: the rarer set is kept).
At detection time all the anchors of all families are looked up once per view
(``str.__contains__``, C speed) and only rules with an anchor present run, the
prefilter of code-search engines (Google's codesearch, RE2's ``FilteredRE2``).

The analysis is conservative: where it cannot prove a literal is needed (``\\w+``,
an optional part, a large class) it gives up on that piece, and a rule with no
provable anchor always runs. Patterns are written for lower-cased text, so the
anchors are lower-case too. What is looked up at detection time (the keys
present in a text, where they occur) is in ``keys``.
"""

from __future__ import annotations

import re
import re._constants as c  # type: ignore[import-not-found]
import re._parser as p  # type: ignore[import-not-found]
from dataclasses import dataclass
from typing import Any

from .keys import SUBSTRING, Keyed

#: Products of alternatives larger than this are not expanded.
_MAX_EXACT = 48
#: Words too common to be a useful anchor on their own.
_COMMON = frozenset(
    [
        "the",
        "a",
        "an",
        "to",
        "of",
        "and",
        "or",
        "in",
        "on",
        "is",
        "are",
        "be",
        "you",
        "your",
        "i",
        "it",
        "this",
        "that",
        "for",
        "with",
        "as",
        "at",
        "not",
        "do",
        "me",
        "my",
        "we",
        "all",
        "any",
    ]
)

#: Stands for a word start (``\\b``, ``^``) inside an anchor while it is built.
_BOUND = "\x01"
_PIECE = re.compile(r"[a-z0-9_]+|[^a-z0-9_\s\x01]+")
_WORDCHAR = re.compile(r"\w")


_Info = tuple[frozenset[str] | None, frozenset[str] | None]  # (exact, required)


_STARTS = (c.AT_BOUNDARY, c.AT_BEGINNING, c.AT_BEGINNING_LINE, c.AT_BEGINNING_STRING)


def cost(anchors: frozenset[str]) -> float:
    """How often a set of anchors is expected to be present (lower is better)."""
    total = 0.0
    for a in anchors:
        core = _core(a).lstrip(SUBSTRING)
        if len(core) <= 1:
            total += 10.0
        elif core in _COMMON:
            total += 5.0
        else:
            total += 0.2 + 3.0 / len(core)
    return total


def _core(anchor: str) -> str:
    """The most telling piece of an anchor, as a lookup key.

    Any piece of a needed literal is needed, so one piece is enough. A piece of
    word characters that starts a word (after ``\\b``, ``^`` or a non-word
    character) becomes a *prefix* key, its first four letters, looked up among
    the text's words' prefixes; anything else a *substring* key, ``SUBSTRING``
    and the text, looked up with ``in``.
    """
    best: tuple[int, str] | None = None
    for m in _PIECE.finditer(anchor):
        piece = m.group()
        if piece in _COMMON or len(piece) < 2:
            continue
        starts = m.start() > 0 and not _WORDCHAR.match(anchor[m.start() - 1])
        if starts and _WORDCHAR.match(piece):
            rank = 100 + min(len(piece), 4) * 10 + len(piece)
            if best is None or rank > best[0]:
                best = (rank, piece[:4])
        else:
            rank = len(piece)
            if best is None or rank > best[0]:
                best = (rank, SUBSTRING + piece.replace(_BOUND, ""))
    if best is None:
        return SUBSTRING + anchor.replace(_BOUND, "")
    return best[1]


def _content(anchor: str) -> str:
    return anchor.replace(_BOUND, "")


def _minimal(anchors: frozenset[str]) -> frozenset[str]:
    """Drop anchors that contain another one (the shorter one is present anyway)."""
    return frozenset(a for a in anchors if not any(b != a and b in a for b in anchors))


def _minimal_keys(keys: frozenset[str]) -> frozenset[str]:
    """Drop keys implied by another of the same kind (a longer prefix, a longer substring)."""

    def implied(a: str) -> bool:
        for b in keys:
            if b == a or (b[0] == SUBSTRING) != (a[0] == SUBSTRING):
                continue
            if (a.startswith(b)) if a[0] != SUBSTRING else (b in a):
                return True
        return False

    return frozenset(a for a in keys if not implied(a))


def _best(candidates: list[frozenset[str]]) -> frozenset[str] | None:
    usable = [_minimal(s) for s in candidates if s and all(_content(a) for a in s)]
    return min(usable, key=cost) if usable else None


def _class(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    chars: set[str] = set()
    for op, av in items:
        if op is c.LITERAL:
            chars.add(chr(av))
        elif op is c.RANGE and av[1] - av[0] < 4:
            chars.update(chr(x) for x in range(av[0], av[1] + 1))
        else:
            return None
    return frozenset(chars) if len(chars) <= 8 else None


def _nonword(items: list[tuple[Any, Any]]) -> bool:
    for op, av in items:
        if op is c.LITERAL:
            if _WORDCHAR.match(chr(av)):
                return False
        elif op is c.CATEGORY:
            if av not in (c.CATEGORY_NOT_WORD, c.CATEGORY_SPACE):
                return False
        else:
            return False
    return True


def _after(op: Any, av: Any, start: bool) -> bool:
    """Whether a word character right after this item must start a word
    (``start``: the same, before the item)."""
    if op is c.LITERAL:
        return not _WORDCHAR.match(chr(av))
    if op is c.IN:
        return _nonword(av)
    if op is c.AT:
        return True if av in _STARTS else start
    if op is c.ASSERT_NOT and av[0] == -1:
        return True
    if op in (c.ASSERT, c.ASSERT_NOT):
        return start
    if op is c.SUBPATTERN:
        return _fold(av[-1], start)
    if op is c.BRANCH:
        return all(_fold(b, start) for b in av[1])
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
        low, high, sub = av
        once = _fold(sub, False) or (high == 1 and _fold(sub, start))
        return once if low >= 1 else once and start
    return False


def _fold(items: Any, start: bool) -> bool:
    for op, av in items:
        start = _after(op, av, start)
    return start


def _seq(items: Any, start: bool = False, every: list[frozenset[str]] | None = None) -> _Info:
    fresh = frozenset({_BOUND if start else ""})
    run: frozenset[str] | None = fresh
    candidates: list[frozenset[str]] = []
    broken = False
    for op, av in items:
        exact, required = _node(op, av, start)
        start = _after(op, av, start)
        if exact is not None and run is not None and len(run) * len(exact) <= _MAX_EXACT:
            run = frozenset(a + b for a in run for b in exact)
            continue
        broken = True
        if run is not None:
            candidates.append(run)
        if exact is not None:
            run = exact
        else:
            if required is not None:
                candidates.append(required)
            run = frozenset({_BOUND if start else ""})
    if not broken:
        return run, _best([run]) if run is not None else None
    if run is not None:
        candidates.append(run)
    if every is not None:
        every.extend(s for s in candidates if s and all(_content(a) for a in s))
    return None, _best(candidates)


def _node(op: Any, av: Any, start: bool) -> _Info:
    empty = frozenset({""})
    if op is c.LITERAL:
        return frozenset({chr(av)}), None
    if op is c.IN:
        return _class(av), None
    if op is c.AT and av in _STARTS:
        return frozenset({_BOUND}), None
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
        return empty, None
    if op is c.SUBPATTERN:
        return _seq(av[-1], start)
    if op is c.BRANCH:
        exacts: set[str] = set()
        reqs: set[str] = set()
        all_exact = True
        all_req = True
        for branch in av[1]:
            exact, required = _seq(branch, start)
            if exact is None:
                all_exact = False
            else:
                exacts |= exact
            chosen = required if required is not None else exact
            if chosen is None or not all(_content(a) for a in chosen):
                all_req = False
            else:
                reqs |= chosen
        exact_out = frozenset(exacts) if all_exact and len(exacts) <= _MAX_EXACT else None
        return exact_out, (_minimal(frozenset(reqs)) if all_req else None)
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
        low, high, sub = av
        exact, required = _seq(sub, start and high == 1)
        if low == 0:
            if high == 1 and exact is not None:
                return exact | {""}, None
            return None, None
        if low == high == 1:
            return exact, required
        return None, required if required is not None else _best([exact] if exact else [])
    return None, None


def _useful(key: str) -> bool:
    if key[0] != SUBSTRING:
        return True
    core = key[1:].strip()
    # Two CJK characters are as rare as a long Latin word.
    return (len(core) >= 3 or (len(core) == 2 and not core.isascii())) and core not in _COMMON


#: At most this many anchor sets are kept per rule (the cheapest).
MAX_SETS = 3


def anchors(pattern: str) -> tuple[frozenset[str], ...] | None:
    """Sets of anchor keys: every match of ``pattern`` contains a key of *each*
    set (the literals of a phrase's several parts); None if none is known."""
    every: list[frozenset[str]] = []
    exact, required = _seq(p.parse(pattern), False, every)
    if not every and required is None and exact is not None:
        required = _best([exact])
    if not every and required is not None:
        every = [required]
    sets = {_minimal_keys(frozenset(_core(a) for a in s)) for s in every}
    # A set with a short substring key (``:``, `` to``) is nearly always present:
    # not worth its lookups.
    sets = {s for s in sets if s and all(_useful(k) for k in s)}
    if not sets:
        return None
    return tuple(sorted(sets, key=cost)[:MAX_SETS])


#: Every character ``\s`` matches (all are below U+3001).
_SPACE_CHARS = [chr(i) for i in range(0x3001) if chr(i).isspace()]
#: What each category says of a space character.
_ON_SPACE = {
    c.CATEGORY_WORD: False,
    c.CATEGORY_NOT_WORD: True,
    c.CATEGORY_DIGIT: False,
    c.CATEGORY_NOT_DIGIT: True,
    c.CATEGORY_SPACE: True,
    c.CATEGORY_NOT_SPACE: False,
}
_UNBOUNDED = (0, 0, 0, True)


@dataclass(frozen=True, slots=True)
class Width:
    """An upper bound on a pattern's match length in a given text: ``fixed``
    plus ``words`` times the text's longest run of non-space characters plus
    ``spaces`` times its longest run of spaces; no bound if ``unbounded``."""

    fixed: int
    words: int
    spaces: int
    unbounded: bool

    def at(self, keyed: Keyed) -> int | None:
        if self.unbounded:
            return None
        total = self.fixed
        if self.words:
            total += self.words * keyed.longest_word()
        if self.spaces:
            total += self.spaces * keyed.longest_space()
        return total


def _on_space(op: Any, av: Any, ch: str) -> bool | None:
    """Whether a one-character item matches the space character ``ch`` (None: unknown)."""
    if op is c.LITERAL:
        return chr(av) == ch
    if op is c.NOT_LITERAL or op is c.ANY:
        return chr(av) != ch if op is c.NOT_LITERAL else True
    if op is not c.IN:
        return None
    negate = False
    hit = False
    for iop, iav in av:
        if iop is c.NEGATE:
            negate = True
        elif iop is c.LITERAL:
            hit = hit or chr(iav) == ch
        elif iop is c.RANGE:
            hit = hit or iav[0] <= ord(ch) <= iav[1]
        elif iop is c.CATEGORY and iav in _ON_SPACE:
            hit = hit or _ON_SPACE[iav]
        else:
            return None
    return hit != negate


def _run_kind(sub: Any) -> str | None:
    """``words`` if the repeated item matches only non-space characters, ``spaces``
    if only space characters, None otherwise (or if it is not one character)."""
    items = list(sub)
    if len(items) != 1:
        return None
    op, av = items[0]
    on = [_on_space(op, av, ch) for ch in _SPACE_CHARS]
    if not any(on) and None not in on:
        return "words"
    only_space = (op is c.LITERAL and chr(av).isspace()) or (
        op is c.IN and all(i == (c.CATEGORY, c.CATEGORY_SPACE) for i in av)
    )
    return "spaces" if only_space else None


def _width(items: Any) -> tuple[int, int, int, bool]:
    fixed = words = spaces = 0
    for op, av in items:
        if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN):
            fixed += 1
        elif op is c.AT:
            continue
        elif op is c.SUBPATTERN:
            f, w, s, u = _width(av[-1])
            if u:
                return _UNBOUNDED
            fixed, words, spaces = fixed + f, words + w, spaces + s
        elif op is c.BRANCH:
            parts = [_width(b) for b in av[1]]
            if any(p[3] for p in parts):
                return _UNBOUNDED
            fixed += max(p[0] for p in parts)
            words += max(p[1] for p in parts)
            spaces += max(p[2] for p in parts)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            _, high, sub = av
            if high == c.MAXREPEAT:
                kind = _run_kind(sub)
                if kind == "words":
                    words += 1
                elif kind == "spaces":
                    spaces += 1
                else:
                    return _UNBOUNDED
                continue
            f, w, s, u = _width(sub)
            if u:
                return _UNBOUNDED
            fixed, words, spaces = fixed + high * f, words + high * w, spaces + high * s
        else:
            # Look-arounds, back-references...: not analysed, no bound.
            return _UNBOUNDED
    return fixed, words, spaces, False


def width(pattern: str) -> Width:
    """An upper bound on the length of any match of ``pattern`` (see ``Width``)."""
    return Width(*_width(p.parse(pattern)))


_LEAD = re.compile(r"\w*")


def leading(pattern: str, word_start: bool) -> frozenset[str] | None:
    """Keys one of which every match of ``pattern`` *starts* with (matches that
    must start at a word start if ``word_start``): for each literal the pattern
    can begin with, a prefix key (its first word's first two to four letters)
    where the literal starts at a word start, else a substring key (its first
    characters, up to four). None if unknown."""
    run = _leading(p.parse(pattern), _BOUND if word_start else "")
    if run is None:
        return None
    keys: set[str] = set()
    for literal in run:
        bound = literal.startswith(_BOUND)
        literal = literal.replace(_BOUND, "")
        head = _head(literal)
        if bound and head:
            if len(head) < 2:
                return None
            keys.add(head[:4])
        elif literal:
            keys.add(SUBSTRING + literal[:4])
        else:
            return None
    return frozenset(keys)


def _leading(items: Any, fresh: str) -> set[str] | None:
    """The literals (``_BOUND`` for a word start) every match begins with, each
    four characters long or complete; None if unknown."""
    run: set[str] = {fresh}
    for op, av in items:
        exact, _ = _node(op, av, False)
        if exact is None or len(run) * len(exact) > _MAX_EXACT:
            if run == {fresh} and op is c.SUBPATTERN:
                return _leading(av[-1], fresh)
            if run == {fresh} and op is c.BRANCH:
                out: set[str] = set()
                for branch in av[1]:
                    found = _leading(branch, fresh)
                    if found is None:
                        return None
                    out |= found
                return out
            break
        run = {a + b for a in run for b in exact}
        if all(len(a.replace(_BOUND, "")) >= 4 for a in run):
            break
    return run


def _head(literal: str) -> str:
    return _LEAD.match(literal).group()  # type: ignore[union-attr]

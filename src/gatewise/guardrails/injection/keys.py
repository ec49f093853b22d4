"""The keys of a text: what the anchor prefilter looks up at detection time.

``anchors`` reads each rule's regex once for the literal strings its matches
need; here a text's keys are collected once per view (the first two to four
letters of each word, and the substring keys that occur) so that a rule runs only
when its anchors are present, and is searched only around where they occur.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Marks a substring key (prefix keys are bare word prefixes).
SUBSTRING = "\x02"

_HEADS = re.compile(r"(?<!\w)\w{1,4}")
#: ASCII characters that are not word characters, to spaces.
_SPACE_OUT = str.maketrans({chr(i): " " for i in range(128) if not re.match(r"\w", chr(i))})


def heads(text: str) -> set[str]:
    """The first four characters (or fewer) of every word (``\\w+`` run) of ``text``."""
    if text.isascii():
        # The words are what is left between non-word characters.
        return {w[:4] for w in set(text.translate(_SPACE_OUT).split())}
    return set(_HEADS.findall(text))


Present = set[str]


def admits(keys: tuple[frozenset[str], ...] | None, found: Present) -> bool:
    """Whether a rule with these anchor sets may match a text with ``found`` keys."""
    if keys is None:
        return True
    return not any(s.isdisjoint(found) for s in keys)


def present(text: str, substrings: Iterable[str], words: set[str] | None = None) -> Present:
    """The keys present in ``text``: every word's 2-, 3- and 4-letter prefixes,
    and those of ``substrings`` (substring keys) that occur. ``words``: the
    words' heads (``heads``) if already known."""
    if words is None:
        words = heads(text)
    keys = set(words)
    keys.update([h[:3] for h in words])
    keys.update([h[:2] for h in words])
    if isinstance(substrings, Substrings):
        keys.update([k for k in substrings.ascii if k[1:] in text])
        if not text.isascii():
            firsts = set(substrings.firsts.findall(text))
            if firsts:
                keys.update([k for k in substrings.other if k[1] in firsts and k[1:] in text])
        return keys
    keys.update([k for k in substrings if k[1:] in text])
    return keys


class Substrings(tuple[str, ...]):
    """Substring keys, with the ASCII ones apart: the others cannot occur in an
    ASCII text, nor in a text without their first character (``firsts`` finds
    those in one pass)."""

    ascii: tuple[str, ...]
    other: tuple[str, ...]
    firsts: re.Pattern[str]

    def __new__(cls, keys: Iterable[str]) -> Substrings:
        self = super().__new__(cls, keys)
        self.ascii = tuple(k for k in self if k.isascii())
        self.other = tuple(k for k in self if not k.isascii())
        chars = sorted({k[1] for k in self.other})
        self.firsts = re.compile("[" + "".join(map(re.escape, chars)) + "]" if chars else "(?!)")
        return self


def occurrences(text: str, key: str) -> list[int]:
    """Where ``key`` occurs in ``text``, in order: a prefix key where a word
    starts with it, a substring key anywhere."""
    word = key[0] != SUBSTRING
    core = key if word else key[1:]
    out: list[int] = []
    find = text.find
    at = find(core)
    while at >= 0:
        if not word or at == 0 or not (text[at - 1].isalnum() or text[at - 1] == "_"):
            out.append(at)
        at = find(core, at + 1)
    return out


_SPACES = re.compile(r"\s+")


class Keyed:
    """A text, the keys present in it, and (computed on demand, then kept) where
    each key occurs and how long its longest runs of non-space and of space
    characters are: what a rule needs to search only around its anchors."""

    __slots__ = ("_among", "_runs", "_where", "keys", "text")

    def __init__(self, text: str, substrings: Iterable[str], words: set[str] | None = None) -> None:
        self.text = text
        self.keys = present(text, substrings, words)
        self._where: dict[str, list[int]] = {}
        self._among: dict[frozenset[str], list[int]] = {}
        self._runs: list[int | None] = [None, None]

    def where(self, key: str) -> list[int]:
        found = self._where.get(key)
        if found is None:
            # A prefix key occurs only if present (a substring key may not be
            # among the ones ``present`` looks up).
            absent = key[0] != SUBSTRING and key not in self.keys
            found = [] if absent else occurrences(self.text, key)
            self._where[key] = found
        return found

    def among(self, keys: frozenset[str]) -> list[int]:
        """Where any of ``keys`` occurs, in order."""
        found = self._among.get(keys)
        if found is None:
            found = []
            for key in keys:
                if key[0] == SUBSTRING or key in self.keys:
                    found += self.where(key)
            found.sort()
            self._among[keys] = found
        return found

    def longest_word(self) -> int:
        """The longest run of non-space characters (a bound on any ``\\w``, ``\\S``... run)."""
        run = self._runs[0]
        if run is None:
            run = self._runs[0] = max(map(len, self.text.split()), default=0)
        return run

    def longest_space(self) -> int:
        """The longest run of space characters."""
        run = self._runs[1]
        if run is None:
            run = self._runs[1] = max(map(len, _SPACES.findall(self.text)), default=0)
        return run

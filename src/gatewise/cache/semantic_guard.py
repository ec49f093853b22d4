"""A lexical check of a semantic-cache hit before it is served.

A sentence encoder places "reset my password" and "reset my colleague's password",
"2-bedroom" and "3-bedroom", "enable" and "disable" as close as two paraphrases
(``eval/semantic_cache``): the words that change the answer are one token among
many. Cosine alone cannot separate them, so a candidate hit must also agree with
the new question on the words themselves:

- **numbers** (digits and number words) are the same set: ``9:15`` is not ``9:45``;
- **negation** (not, no, never, without, n't, non-) is on both sides or neither;
- **a near copy is a copy**: when the two questions share most of their content
  words (a template with one slot changed: an entity, a scope, an antonym), every
  content word must be matched, allowing typos (an edit or two in a long word, the
  first letter kept, so "unlock" never matches "lock"), and the words after "to",
  "from", "for" ... must agree (so "from savings to current" is not "from current to
  savings");
- a question that words the same content differently (a paraphrase) shares fewer
  content words and is left to the cosine threshold.

Each question's ``Signature`` is computed once (a stored one when it is stored);
``agree`` costs a few microseconds on short questions.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _words(text: str) -> list[str]:
    return text.split()


_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        _words(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
}
_NUMBER_WORDS.update(
    thirty="30", forty="40", fifty="50", sixty="60", seventy="70", eighty="80", ninety="90",
    hundred="100", thousand="1000", million="1000000", billion="1000000000", dozen="12",
    first="1st", third="3rd", fourth="4th", fifth="5th", once="1x", twice="2x", half="0.5",
    single="1", double="2x", triple="3x",
)  # fmt: skip

_NEGATIONS = frozenset(
    _words("not no never none nothing nobody nowhere neither nor without cannot non")
)

#: Words that carry no content of their own: asking forms, articles, politeness and
#: fillers. Left out of the comparison so "How can I ..." matches "How do I ...".
#: Not here on purpose: to/from/into, on/off, in/out, up/down, before/after,
#: quantifiers (all, every, most), whose (my, your, their): they change what is asked.
_LIGHT = frozenset(
    _words(
        """a an the this that these those it its is are was were be been being am do does
    did done can could would should will shall may might must i i'm me you we us how
    what what's whats where when which who whom why whether if please thanks thank
    cheers hi hello hey morning afternoon evening um uh er erm so just wondering quick
    question sorry bother tell know like i'd i'll there there's here s ok okay
    many much very really actually also any some get got but and or of at for by with"""
    )
)

#: Prepositions whose object must be the same word on both sides of a near copy.
_SLOTS = frozenset(_words("to from into onto than versus vs"))


@dataclass(frozen=True, slots=True)
class Signature:
    """What the guard compares of one question."""

    words: tuple[str, ...]  # content words in order (no numbers, no light words)
    numbers: frozenset[str]
    negated: bool
    slots: frozenset[tuple[str, str]]  # (preposition, the content word after it)
    context: str = ""  # the system prompt(s): must be the same, word for word


def signature(text: str, context: str = "") -> Signature:
    """``text``: the question (the last user message); ``context``: the system
    prompt(s) it was asked under."""
    text = text.casefold().replace("\u2019", "'")
    numbers = {n.replace(",", "") for n in _NUMBER.findall(text)}
    negated = False
    words: list[str] = []
    slots: set[tuple[str, str]] = set()
    pending: str | None = None
    for token in _TOKEN.findall(text):
        if token.endswith("n't"):
            negated = True
            token = token[:-3]
        elif token.endswith(("'s", "'d")):
            token = token[:-2]
        token = token.replace("'", "")
        if token in _NEGATIONS:
            negated = True
            continue
        if token in _NUMBER_WORDS:
            numbers.add(_NUMBER_WORDS[token])
            continue
        if any(c.isdigit() for c in token):
            rest = token.strip("0123456789.,")
            if rest and not rest.isdigit():  # 2fa, 10gb, 3pm: the unit is a word too
                token = rest
            else:
                continue
        if token in _SLOTS:
            pending = token
            continue
        if token in _LIGHT:
            continue
        if pending is not None and token != "my":  # "from my savings": the slot is savings
            slots.add((pending, _stem(token)))
            pending = None
        words.append(_stem(token))
    return Signature(tuple(words), frozenset(numbers), negated, frozenset(slots), context)


def _stem(word: str) -> str:
    """A crude inflection strip (watering/water, refunds/refund): enough for matching
    words that are already close; never applied to short words."""
    if len(word) >= 6 and word.endswith("ing"):
        return word[:-3]
    if len(word) >= 5 and word.endswith("ed"):
        return word[:-2]
    if len(word) >= 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _typo(a: str, b: str) -> bool:
    """``b`` is ``a`` mistyped (or an inflection): same first letter, at most one edit
    (two for words of eight letters or more), one adjacent swap counting as one."""
    if a[0] != b[0]:
        return False
    longest = max(len(a), len(b))
    if longest < 5:
        return False
    limit = 2 if longest >= 8 else 1
    if abs(len(a) - len(b)) > limit:
        return False
    # Damerau-Levenshtein (optimal string alignment), bounded
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > limit:
            return False
        prev2, prev = prev, row
    return prev[-1] <= limit


def unmatched(q: Signature, c: Signature) -> tuple[list[str], list[str], int]:
    """Content words of ``q`` and ``c`` left over after matching equal words, then
    typos; and how many were matched."""
    left = Counter(q.words)
    right = Counter(c.words)
    common = left & right
    only_q = list((left - common).elements())
    only_c = list((right - common).elements())
    matched = sum(common.values())
    for word in list(only_q):
        for other in only_c:
            if _typo(word, other):
                only_q.remove(word)
                only_c.remove(other)
                matched += 1
                break
    return only_q, only_c, matched


#: Share of content words in common at and above which two questions are one template
#: (chosen on the dev split of ``eval/semantic_cache/pairs.jsonl``, as the thresholds).
NEAR_COPY = 0.5

COPY, REWORDED, REFUSED = "copy", "reworded", "refused"


def compare(q: Signature, c: Signature, *, near_copy: float = NEAR_COPY) -> str:
    """``COPY``: the same content words (typos, order, asking form aside);
    ``REWORDED``: a different wording, left to the cosine threshold; ``REFUSED``: a
    different question however close the vectors (a number, a negation, one word
    of a near copy changed, a swap)."""
    if q.context != c.context or q.numbers != c.numbers or q.negated != c.negated:
        return REFUSED
    only_q, only_c, matched = unmatched(q, c)
    if not only_q and not only_c:
        return COPY if _slots_agree(q, c) else REFUSED
    total = matched + len(only_q) + len(only_c)
    return REFUSED if matched / total >= near_copy else REWORDED


def accept(
    q: Signature, c: Signature, score: float, *, threshold: float, copy_threshold: float
) -> bool:
    """May ``c``'s reply answer ``q`` at cosine ``score``? A copy needs
    ``copy_threshold``, a rewording ``threshold``."""
    kind = compare(q, c)
    if kind == REFUSED:
        return False
    return score >= (copy_threshold if kind == COPY else threshold)


def _slots_agree(q: Signature, c: Signature) -> bool:
    """The same words in both: what follows "to", "from" ... must be the same word
    at least once (a swap such as "from A to B" / "from B to A" keeps every word)."""
    if q.slots == c.slots:
        return True
    preps = {p for p, _ in q.slots} & {p for p, _ in c.slots}
    for prep in preps:
        mine = [w for p, w in q.slots if p == prep]
        theirs = [w for p, w in c.slots if p == prep]
        if not any(w == o or _typo(w, o) for w in mine for o in theirs):
            return False
    return True

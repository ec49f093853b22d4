"""Adversarial suffixes: optimiser-made gibberish glued after a request.

Why statistics and not phrases: suffixes found by gradient search (GCG and its
successors) differ on every run; what they share is their texture. Natural
prose has few tokens that mix letters with brackets, backslashes or markup, few
words with a case switch in the middle (``similarlyNow``) and brackets that
balance. A GCG tail has all three, right after ordinary words. So the text's
tail (its last ``TAIL`` whitespace tokens) is compared with its head: an odd
tail after a plain head scores, an odd text throughout (source code, a stack
trace, a table) does not, and code is recognised by its keywords and layout.
A run of ``! ! ! !`` (the usual initial suffix before optimisation) scores too.
"""

from __future__ import annotations

import re

from .rules import Scan

TAIL = 24
_ODD_CHARS = frozenset("\\[](){}<>*~`^|$%#@+=_")
_CASE_SWITCH = re.compile(r"[a-z]{2}[A-Z][a-z]")
_CODE_HINT = re.compile(
    r"(?:^|\n)[ \t]*(?:def |class |import |from \w+ import|function |const |let |var |public "
    r"|#include|SELECT |return )"
    r"|=>|\);|\n {4}\S|^\s*[{}]\s*$|```|\b[a-z_]\w*\.\w+\(|\bdef \w+\(",
    re.MULTILINE,
)
_BANG_RUN = re.compile(r"(?:! ){8,}!?")


def _odd(token: str) -> bool:
    if _ODD_CHARS.isdisjoint(token):
        return _CASE_SWITCH.search(token) is not None
    letters = sum(c.isalpha() for c in token)
    odd = sum(c in _ODD_CHARS for c in token)
    if odd and letters:
        return True
    if odd >= 2 and not letters:
        return True
    return _CASE_SWITCH.search(token) is not None


def _imbalance(text: str) -> int:
    return sum(abs(text.count(a) - text.count(b)) for a, b in ("()", "[]", "{}"))


def scan(original: str) -> Scan:
    """Score the tail of ``original`` (case kept: case switches are a signal)."""
    bang = _BANG_RUN.search(original[-2000:])
    if bang:
        start = len(original) - min(len(original), 2000) + bang.start()
        return Scan(0.6, ((start, start + len(bang.group())),))
    tokens = original[-3000:].split()
    if len(tokens) < 10:
        return Scan(0.0, ())
    size = min(TAIL, max(8, len(tokens) // 2))
    tail = tokens[-size:]
    head = tokens[:-size][-60:]
    odd_tail = sum(map(_odd, tail)) / len(tail)
    if odd_tail < 0.3 or _CODE_HINT.search(original[-3000:]):
        return Scan(0.0, ())
    odd_head = sum(map(_odd, head)) / len(head) if head else 0.0
    tail_text = " ".join(tail)
    imbalance = _imbalance(tail_text)
    switches = sum(1 for t in tail if _CASE_SWITCH.search(t))
    if not (imbalance or switches or "\\" in tail_text):
        return Scan(0.0, ())
    score = 0.15 + odd_tail
    if head and odd_head < 0.1:
        score += 0.15
    if imbalance >= 2:
        score += 0.15
    if "\\" in tail_text:
        score += 0.05
    score = min(score, 0.95)
    start = original.rfind(tail[0], max(0, len(original) - 3000))
    span = ((start, len(original)),) if start >= 0 else ()
    return Scan(score, span)

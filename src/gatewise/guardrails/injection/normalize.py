"""Normalisation before detection: one cheap canonical view of the text, and the
extra views attackers hide instructions in.

Why: pattern detectors read words, and attackers change the bytes, not the
words. Fullwidth letters, zero-width joiners between letters, Cyrillic
look-alikes (``іgnоrе`` with Cyrillic і and о) and invisible Unicode *tag*
characters (U+E0000 block: each one mirrors an ASCII character and renders as
nothing) all defeat a matcher that reads the raw string. So every text becomes:

* the **plain** view: NFKC, zero-width characters removed, tag characters decoded
  to the ASCII they mirror (hidden text becomes visible text), look-alikes folded
  to Latin, lower-cased. Its offsets map back to the original text (``origin``).
* a **leet** view (``1gn0r3`` → ``ignore``) when the text has digits or ``@$``
  wedged between letters; one character per character, so it maps back too.
* **decoded payloads**: base64, hex, URL-encoded and rot13 text that decodes to
  plausible prose (length, UTF-8 and printable-ratio checks). Matches inside a
  payload are reported at the payload's place in the original text.

The work is bounded: ASCII text (most prompts) takes a fast path with no
per-character Python loop; payload decoding looks at no more than
``MAX_PAYLOADS`` candidates and ``MAX_DECODED`` characters in all.
"""

# ruff: noqa: RUF001, RUF002
# (the look-alike table holds the very characters this rule warns about)
from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from .keys import heads

MAX_PAYLOADS = 8
MAX_DECODED = 16_384
MIN_PAYLOAD = 16

#: Characters that render as nothing and only serve to split words.
_ZERO_WIDTH = "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e"

#: Look-alikes (Cyrillic, Greek, a few symbols) folded to the Latin letter they
#: imitate. Lower-case targets: views are lower-cased anyway.
_HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j",
    "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "һ": "h", "ӏ": "l",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p",
    "С": "c", "Т": "t", "У": "y", "Х": "x", "І": "i", "Ј": "j", "Ѕ": "s",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h",
    "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y",
    "Χ": "x",
}  # fmt: skip

_FOLD: dict[int, str | None] = {ord(c): None for c in _ZERO_WIDTH}
_FOLD.update({ord(k): v for k, v in _HOMOGLYPHS.items()})
# Tag characters U+E0020..U+E007E mirror ASCII; the rest of the block is dropped.
_FOLD.update({cp: chr(cp - 0xE0000) for cp in range(0xE0020, 0xE007F)})
_FOLD.update({cp: None for cp in (0xE0001, 0xE007F)})

_LEET = str.maketrans(
    {"1": "i", "3": "e", "4": "a", "0": "o", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_LEET_HINT = re.compile(r"[a-z][013457@$]|[013457@$][a-z]")
_LEET_CHAR = re.compile(r"[013457@$]")
_LEET_SET = frozenset("013457@$")
_MIXED_SCRIPT = re.compile(r"[a-z][\u0370-\u03ff\u0400-\u04ff]|[\u0370-\u03ff\u0400-\u04ff][a-z]")

_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{16,8192}={0,2}")
_HEX = re.compile(r"(?:\\x[0-9a-fA-F]{2}){8,4096}|\b(?:[0-9a-fA-F]{2}[ :]?){8,4096}")
_URL = re.compile(r"(?:%[0-9a-fA-F]{2}[^\s%]{0,8}){4,4096}")
_ROT13_HINT = re.compile(r"\b(?:gur|naq|lbh|vtaber|vafgehpgvbaf|cerivbhf|flfgrz|cebzcg|lbhe)\b")
_ROT13_HEADS = frozenset(
    w[:4]
    for w in ["gur", "naq", "lbh", "vtaber", "vafgehpgvbaf", "cerivbhf", "flfgrz", "cebzcg", "lbhe"]
)
#: Every hex payload lies in a run of 16 or more of these (8 digit pairs, maybe
#: spaced, or 8 ``\\xNN``).
_HEX_RUN = re.compile(r"[0-9a-fA-F :\\x]{16,}")
_ROT13_NAMED = re.compile(r"\brot-?\s?13\b")


@dataclass(frozen=True, slots=True)
class View:
    """A text to scan. ``kind`` is ``plain``, ``leet`` or a decoding (``base64``...).
    ``where`` is the payload's [start, end) in the plain view (decoded views only)."""

    kind: str
    text: str
    where: tuple[int, int] | None = None


@dataclass(slots=True)
class Prepared:
    """The views of one text, and how to map plain-view offsets back to it."""

    original: str
    plain: str  # case kept: decoders need it
    views: list[View] = field(default_factory=list)
    #: Text was altered in ways only an attacker needs (tag characters, zero-width
    #: characters inside words, mixed-script look-alikes).
    disguised: bool = False
    #: The plain view's word heads (each ``\\w+`` run's first four characters).
    heads: set[str] | None = None
    _offsets: list[int] | None = None
    _mapped: bool | None = None

    def to_original(self, start: int, end: int) -> tuple[int, int] | None:
        """The original text's [start, end) for a plain-view range, or None."""
        if self.plain is self.original or self.plain == self.original:
            return (start, end)
        if self._mapped is None:
            self._build_offsets()
        if not self._mapped or self._offsets is None or end <= start:
            return None
        offsets = self._offsets
        if end > len(offsets):
            return None
        return (offsets[start], offsets[end - 1] + 1)

    def _build_offsets(self) -> None:
        offsets: list[int] = []
        pieces: list[str] = []
        # Character by character, but an ASCII run folds to itself in one piece.
        for m in _ASCII_OR_ONE.finditer(self.original):
            start, end = m.span()
            if end - start > 1 or m.group().isascii():
                pieces.append(m.group())
                offsets.extend(range(start, end))
                continue
            piece = fold(m.group())
            pieces.append(piece)
            offsets.extend([start] * len(piece))
        self._mapped = "".join(pieces) == self.plain
        self._offsets = offsets


#: Every character ``_FOLD`` changes falls in one of these ranges: a text with
#: none skips the (slow, per-character) translation.
_FOLDABLE = re.compile(
    "[\u00ad\u0261\u0370-\u052f\u180e\u200b-\u200f\u2060-\u2064\ufeff\U000e0000-\U000e007f]"
)
_ASCII_OR_ONE = re.compile(r"[\x00-\x7f]+|.", re.DOTALL)
_TAGS = re.compile("[\U000e0000-\U000e007f]")
_GREEK_CYRILLIC = re.compile("[\u0370-\u04ff]")


def fold(text: str) -> str:
    """NFKC, zero-width removal, tag decoding and look-alike folding (case kept)."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    if _FOLDABLE.search(text) is None:
        return text
    return text.translate(_FOLD)


def _lower(text: str) -> str:
    low = text.lower()
    if len(low) == len(text):
        return low
    # A few characters lower to two (İ): keep one per one so offsets stay valid.
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def prepare(text: str) -> Prepared:
    """Build the views of ``text`` (the plain view first)."""
    plain = fold(text)
    prepared = Prepared(original=text, plain=plain)
    if not text.isascii():
        tags = len(_TAGS.findall(text))
        zero = sum(text.count(c) for c in _ZERO_WIDTH[:5])
        lowered = text.lower()
        mixed = (
            _GREEK_CYRILLIC.search(lowered) is not None
            and _MIXED_SCRIPT.search(lowered) is not None
        )
        prepared.disguised = tags >= 3 or zero >= 3 or mixed
    low = _lower(plain)
    prepared.views.append(View("plain", low))
    # Each hint holds one of these characters: fewer than three, fewer than three hints.
    if _leet_hints(low) >= 3:
        leet = low.translate(_LEET)
        if leet != low:
            prepared.views.append(View("leet", leet))
    prepared.heads = heads(low)
    prepared.views.extend(decoded_views(plain, low, prepared.heads))
    return prepared


def _leet_hints(low: str, enough: int = 3) -> int:
    """``len(_LEET_HINT.findall(low, 0, 65_536))``, counted up to ``enough``.

    Every hint holds a leet character, so only the places next to one are
    tried, left to right, a hint resuming the search after itself as
    ``findall`` does."""
    end = min(len(low), 65_536)
    found = 0
    pos = 0
    for m in _LEET_CHAR.finditer(low, 0, end):
        at = m.start()
        for i in (at - 1, at):
            if i < pos or i + 2 > end:
                continue
            a, b = low[i], low[i + 1]
            if ("a" <= a <= "z" and b in _LEET_SET) or (a in _LEET_SET and "a" <= b <= "z"):
                found += 1
                pos = i + 2
                if found >= enough:
                    return found
    return found


def _plausible(decoded: str) -> bool:
    if len(decoded) < 8:
        return False
    printable = sum(1 for c in decoded if c.isprintable() or c in "\n\t\r")
    letters = sum(1 for c in decoded if c.isalpha())
    return printable / len(decoded) >= 0.9 and letters / len(decoded) >= 0.5 and " " in decoded


def _b64(raw: str) -> str | None:
    if len(raw) % 4 == 1:
        return None
    padded = raw.rstrip("=") + "=" * (-len(raw.rstrip("=")) % 4)
    try:
        data = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        return data.decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _hex(raw: str) -> str | None:
    digits = re.sub(r"\\x|[ :]", "", raw)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        return bytes.fromhex(digits).decode("utf-8")
    except ValueError:
        return None


def _url(raw: str) -> str | None:
    decoded = unquote(raw, errors="strict")
    return decoded if decoded != raw else None


def decoded_views(plain: str, low: str, heads: set[str] | None = None) -> list[View]:
    """Plausible payloads hidden in the text, decoded (bounded work). ``heads``:
    the word heads of ``low`` if known (to skip the rot13 look-up)."""
    views: list[View] = []
    budget = MAX_DECODED
    for kind, rx, decode in (("base64", _BASE64, _b64), ("hex", _HEX, _hex), ("url", _URL, _url)):
        if kind == "url" and "%" not in plain:
            continue
        matches: Iterable[re.Match[str]]
        if kind == "hex":
            # Every hex match lies inside a run of its alphabet 16 or more long:
            # searching those runs alone finds the same matches.
            matches = (
                m for run in _HEX_RUN.finditer(plain) for m in rx.finditer(plain, *run.span())
            )
        else:
            matches = rx.finditer(plain)
        for n, m in enumerate(matches):
            if n >= 4 * MAX_PAYLOADS or len(views) >= MAX_PAYLOADS or budget <= 0:
                break
            raw = m.group()
            if len(raw) < MIN_PAYLOAD or (kind == "base64" and raw.isalpha() and raw.islower()):
                continue
            try:
                decoded = decode(raw)
            except UnicodeDecodeError:
                decoded = None
            if decoded is None or not _plausible(decoded):
                continue
            decoded = decoded[:budget]
            budget -= len(decoded)
            views.append(View(kind, _lower(fold(decoded)), m.span()))
    if heads is not None and _ROT13_HEADS.isdisjoint(heads) and "rot" not in low:
        return views
    if len(_ROT13_HINT.findall(low, 0, 65_536)) >= 2 or _ROT13_NAMED.search(low):
        views.append(View("rot13", codecs.encode(low[:MAX_DECODED], "rot13"), (0, len(low))))
    return views


def leet_fold(text: str) -> str:
    """The leet fold alone (1→i, 3→e, 4→a, 0→o, 5→s, 7→t, @→a, $→s)."""
    return text.translate(_LEET)

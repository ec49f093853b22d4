"""E-mail addresses and phone numbers.

E-mail is easy to recognise exactly (an ``@`` between a local part and a dotted
domain with an alphabetic top-level label), so its pattern only runs when the
text has an ``@``.

Phone numbers have no checksum, and digits in groups are everywhere (dates,
ISBNs, versions, order and parcel numbers), so precision comes from *shape*:
a candidate is a run of digit groups, and it counts only if the groups form a
shape a person writes a phone number in:

* international: ``+`` and a real country calling code, 8-15 digits in all
  (E.164), in any grouping with spaces, dots, dashes, slashes or parentheses
  (``+44 (0)20 7946 0958``, ``+1-202-555-0143``, ``+33 1 23 45 67 89``);
  ``+1`` numbers must also be valid North American numbers;
* North American: ``202-555-0143``, ``(202) 555-0143``, ``1 202 555 0143``
  (area code and exchange start with 2-9);
* trunk-prefixed national numbers (UK, Germany and most of Europe): a first
  group ``0`` plus 2-5 digits, then groups of at least two digits, 10-12
  digits in all (``020 7946 0958``, ``030 12345678``, ``0151/2345678``);
* French: five pairs starting with ``0`` (``01 23 45 67 89``).

``00``-prefixed international numbers count only next to a phone word
("phone", "tel", "call", ...). Bare digit runs score below a usual threshold
(0.5) unless a phone word is near, except ten or eleven digits starting with a
trunk ``0``, which score 0.5. Words such as "order" or "tracking" lower the
score of any of them. An extension (``x123``, ``ext. 123``) is part of the span.
"""

from __future__ import annotations

import re

from gatewise.guardrails.pii.recognizer import NOT_PERSONAL_WORDS, Match, clamp, near, words

# Letters and digits in any script (internationalised addresses, RFC 6531/IDNA).
_DOMAIN = re.compile(r"(?:[^\W_](?:[\w\-]{0,61}[^\W_])?\.)+[^\W\d_]{2,24}(?![\w\-]|\.\w)")
_LOCAL_PUNCTUATION = frozenset("._%+-")


def find_emails(text: str, lower: str) -> list[Match]:
    """E-mail addresses (local part, ``@``, a dotted domain with a letters-only TLD).

    Each ``@`` is the anchor: the local part is walked back from it (64 characters
    at most) and the domain matched forward from it, so text full of ``@`` signs
    costs a few steps per sign rather than a regex search around each."""
    found: list[Match] = []
    at = text.find("@")
    while at != -1:
        domain = _DOMAIN.match(text, at + 1)
        start = _local_start(text, at) if domain is not None else -1
        if domain is not None and start >= 0 and _not_url_credentials(text, start):
            found.append(Match(start, domain.end(), "EMAIL_ADDRESS", 1.0))
            at = text.find("@", domain.end())
        else:
            at = text.find("@", at + 1)
    return found


def _local_start(text: str, at: int) -> int:
    """Where the local part before ``text[at] == "@"`` starts, or -1 if there is none
    (empty, longer than 64 characters, or not starting and ending with a letter or digit)."""
    start, lowest = at, max(0, at - 64)
    while start > lowest and (text[start - 1].isalnum() or text[start - 1] in _LOCAL_PUNCTUATION):
        start -= 1
    if start == at or (start == lowest > 0 and text[start - 1].isalnum()):
        return -1
    while start < at and not text[start].isalnum():
        start += 1
    local = text[start:at]
    if not local or ".." in local or (not local[-1].isalnum() and local[-1] not in "+-%_"):
        return -1
    return start


def _not_url_credentials(text: str, start: int) -> bool:
    """user:password@host in a URL is credentials (the secrets detector's), not an address."""
    token_start = max(text.rfind(" ", 0, start), text.rfind("\n", 0, start)) + 1
    return "://" not in text[token_start:start]


# A run of digit groups: a group is digits or a parenthesised short group; groups are
# joined by one or two separators (or nothing after a closing parenthesis). The
# lookbehind refuses to start inside a word or a number, so each run is tried once.
_GROUP = r"(?:\(\d{1,5}\)|\d{1,12})"
_PHONE = re.compile(
    # The first character (+, a parenthesis or a digit) is consumed before the
    # lookbehind looks at the one before it: a leading character class lets the
    # regex engine skip other characters fast. Then the rest of the first group.
    r"[+(\d](?<![\w+\-./,][+(\d])"
    r"(?:(?<=\+)" + _GROUP + r"|(?<=\()\d{1,5}\)|(?<=\d)\d{0,11})"
    r"(?:(?:[ .\-/]{1,2}|(?<=\))|(?=\())" + _GROUP + r"){0,6}"
    r"(?P<ext>[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6})?"
)
_DIGITS = re.compile(r"\d+")

# ITU-T E.164 country calling codes: all one- and two-digit codes, and the three-digit
# blocks in use (written as ranges of the first three digits).
_CC2 = frozenset(
    ("20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
     "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61",
     "62", "63", "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94",
     "95", "98")
)  # fmt: skip
_CC3_RANGES = (
    (211, 269), (290, 299), (350, 359), (370, 389), (420, 423), (500, 509),
    (590, 599), (670, 692), (800, 800), (808, 808), (850, 856), (870, 870),
    (878, 888), (960, 979), (992, 998),
)  # fmt: skip

_PHONE_WORDS = words(
    "phone", "tel", "call", "mobile", "cell", "fax", "whatsapp", "sms", "text me",
    "reach", "contact", "ring", "dial", "number", "handy", "telefon", "ruf",
    "portable", "téléphone", "appel", "ph.", "ph:", "☎", "📞",
)  # fmt: skip


def _country_code_ok(digits: str) -> bool:
    if digits[0] in "17":
        return True
    if digits[:2] in _CC2:
        return True
    first3 = int(digits[:3]) if len(digits) >= 3 else -1
    return any(low <= first3 <= high for low, high in _CC3_RANGES)


def _nanp_ok(ten: str) -> bool:
    """A North American number: area code and exchange start with 2-9. (N11 codes are
    not assigned either, but people and test data write them, and they are no less
    a phone number for that.)"""
    return ten[0] >= "2" and ten[3] >= "2"


def _international_ok(groups: list[str]) -> bool:
    digits = "".join(groups)
    if not 8 <= len(digits) <= 15 or not _country_code_ok(digits):
        return False
    if digits[0] == "1":
        return len(digits) == 11 and _nanp_ok(digits[1:])
    return True


def _national_shape(groups: list[str]) -> bool:
    """Whether digit groups written without ``+`` look like a phone number (see above)."""
    sizes = [len(g) for g in groups]
    digits = "".join(groups)
    if sizes == [3, 3, 4] or (sizes == [1, 3, 3, 4] and groups[0] == "1"):
        return _nanp_ok(digits[-10:])
    if digits[0] != "0" or digits[:2] == "00":
        return False
    if sizes == [2, 2, 2, 2, 2]:
        return digits[1] != "0"
    return (
        10 <= len(digits) <= 12
        and 2 <= len(sizes) <= 4
        and 3 <= sizes[0] <= 6
        and min(sizes[1:]) >= 2
        and sizes[-1] >= 3
    )


def _bare_ok(digits: str) -> bool:
    """A number written without separators, accepted only beside a phone word."""
    if len(digits) == 10 and digits[0] != "0":
        return _nanp_ok(digits)
    if len(digits) == 11 and digits[0] == "1":
        return _nanp_ok(digits[1:])
    return digits[0] == "0" and digits[1] != "0" and 10 <= len(digits) <= 12


def _shape_score(groups: list[str], plus: bool, phone_word: bool) -> float | None:
    """The base score of digit groups as a phone number, or None if they are not one."""
    digits = "".join(groups)
    if len(digits) < 7:
        return None
    if plus:
        return 0.8 if _international_ok(groups) else None
    if _national_shape(groups):
        return 0.65
    if digits[:2] == "00" and phone_word and len(groups) >= 2:
        rest = [groups[0][2:], *groups[1:]] if len(groups[0]) > 2 else groups[1:]
        return 0.5 if _international_ok(rest) else None
    if len(groups) == 1 and _bare_ok(digits):
        # Bare digits: a trunk-prefixed national number is a phone more often than
        # not; anything else needs a phone word to reach a usual threshold.
        return 0.5 if digits[0] == "0" else 0.35
    return None


def find_phones(text: str, lower: str) -> list[Match]:
    """Phone numbers in international and national shapes; see the module docstring.

    A run of digit groups may hold more than a phone number (one followed by a
    card number, a year, a count), so the longest leading part that has a phone's
    shape is taken."""
    found: list[Match] = []
    for m in _PHONE.finditer(text):
        if m.end() - m.start() < 7:  # fewer than 7 digits: no phone number
            continue
        start = m.start()
        extension_at = m.start("ext") if m.group("ext") else -1
        run_end = extension_at if extension_at >= 0 else m.end()
        groups = list(_DIGITS.finditer(text, start, run_end))
        digits = sum(g.end() - g.start() for g in groups)
        if digits < 7:
            continue
        phone_word = near(lower, start, run_end, _PHONE_WORDS, 48)
        for k in range(len(groups), 0, -1):
            if k < len(groups):
                digits -= groups[k].end() - groups[k].start()
                if digits < 7:
                    break
            if digits > 17:  # E.164's 15, a trunk 0 and a 00 prefix at most
                continue
            end = groups[k - 1].end()
            opened = text.count("(", start, end) - text.count(")", start, end)
            if opened == 1 and text.startswith(")", end):
                end += 1
            elif opened:
                continue
            if end == extension_at:
                end = m.end()
            if end < len(text) and (text[end].isalnum() or text[end] == "_"):
                continue
            score = _shape_score([g.group() for g in groups[:k]], text[start] == "+", phone_word)
            if score is None:
                continue
            if phone_word:
                score += 0.2
            if near(lower, start, end, NOT_PERSONAL_WORDS, 24):
                score -= 0.4
            found.append(Match(start, end, "PHONE_NUMBER", clamp(score)))
            break
    return found

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

Bare digit runs and ``00``-prefixed international numbers count only next to
a phone word ("phone", "tel", "call", ...), and words such as "order" or
"tracking" lower the score of any of them.
"""

from __future__ import annotations

import re

from gatewise.guardrails.pii.recognizer import NOT_PERSONAL_WORDS, Match, clamp, near

_EMAIL = re.compile(
    r"(?<![\w.%+\-])[A-Za-z0-9](?:[\w.%+\-]{0,63})@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w\-]|\.\w)"
)


def find_emails(text: str, lower: str) -> list[Match]:
    """E-mail addresses (local part, ``@``, a dotted domain with a letters-only TLD)."""
    if "@" not in text:
        return []
    found: list[Match] = []
    for m in _EMAIL.finditer(text):
        local = m.group()[: m.group().index("@")]
        if ".." in local or local.endswith("."):
            continue
        found.append(Match(m.start(), m.end(), "EMAIL_ADDRESS", 1.0))
    return found


# A run of digit groups: a group is digits or a parenthesised short group; groups are
# joined by one or two separators (or nothing after a closing parenthesis). The
# lookbehind refuses to start inside a word or a number, so each run is tried once.
_GROUP = r"(?:\(\d{1,5}\)|\d{1,12})"
_PHONE = re.compile(
    r"(?<![\w+\-./,])(?P<plus>\+)?" + _GROUP + r"(?:(?:[ .\-/]{1,2}|(?<=\)))" + _GROUP + r"){0,6}"
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

_PHONE_WORDS = (
    "phone", "tel", "call", "mobile", "cell", "fax", "whatsapp", "sms", "text me",
    "reach me", "contact", "ring", "dial", "number", "handy", "telefon", "ruf",
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
    """A North American number: area code and exchange start with 2-9 and are not N11."""
    return ten[0] >= "2" and ten[3] >= "2" and ten[1:3] != "11" and ten[4:6] != "11"


def _international_ok(groups: list[str]) -> bool:
    digits = "".join(groups)
    if not 8 <= len(digits) <= 15 or not _country_code_ok(digits) or len(groups) < 2:
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


def find_phones(text: str, lower: str) -> list[Match]:
    """Phone numbers in international and national shapes; see the module docstring."""
    found: list[Match] = []
    for m in _PHONE.finditer(text):
        start, end = m.span()
        raw = m.group()
        # A run may end in a separator or a dangling parenthesis: trim, and refuse a
        # run cut short by the group limit (more digits follow) or glued to a word.
        while raw and not raw[-1].isdigit() and raw[-1] != ")":
            raw = raw[:-1]
        end = start + len(raw)
        if end < len(text) and (text[end].isalnum() or text[end] == "_"):
            continue
        if raw.count("(") != raw.count(")"):
            continue
        groups = _DIGITS.findall(raw)
        if not groups:
            continue
        digits = "".join(groups)
        if len(digits) < 7:
            continue
        phone_word = near(lower, start, end, _PHONE_WORDS, 32)
        if m.group("plus"):
            if not _international_ok(groups):
                continue
            score = 0.8
        elif _national_shape(groups):
            score = 0.65
        elif digits[:2] == "00" and phone_word and len(groups) >= 2:
            rest = [groups[0][2:], *groups[1:]] if len(groups[0]) > 2 else groups[1:]
            if not _international_ok(rest):
                continue
            score = 0.5
        elif len(groups) == 1 and phone_word and _bare_ok(digits):
            score = 0.4
        else:
            continue
        if phone_word:
            score += 0.2
        if near(lower, start, end, NOT_PERSONAL_WORDS, 24):
            score -= 0.4
        found.append(Match(start, end, "PHONE_NUMBER", clamp(score)))
    return found

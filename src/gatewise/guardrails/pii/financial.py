"""Payment card numbers (Luhn and issuer ranges) and IBANs (mod-97 and per-country length).

Both carry a checksum, so they are the most precise recognizers here: a random
16-digit number passes Luhn one time in ten, and must also start with an issuer
prefix of the right length, and sit in a grouping people write cards in (bare,
or groups of four, or Amex/Diners' 4-6-5 / 4-6-4, with one kind of separator).
An IBAN's mod-97 check lets through one random string in 97, and its length
must be the one its country registered. Words such as "order" or "tracking"
before a card-shaped number lower its score rather than drop it: a Luhn-valid
number in an issuer range is still more likely a card than not.
"""

from __future__ import annotations

import re

from gatewise.guardrails.pii.recognizer import NOT_PERSONAL_WORDS, Match, clamp, near, words

# Bare 12-19 digits, groups of four (12-19 digits), or 4-6-4/4-6-5 (Diners, Amex), with
# one kind of separator throughout (the backreference). The lookarounds refuse a
# number that continues (more digits, a decimal part, a dash-joined code).
# The first digit is consumed before the lookbehind checks the character before it:
# a leading character class lets the regex engine skip non-digits fast.
_CARD = re.compile(
    r"\d(?<![\w\-.,/]\d)"
    r"(?:\d{3}(?P<s>[ -]?)\d{4}(?P=s)\d{4}(?:(?P=s)\d{1,4}(?:(?P=s)\d{1,3})?)?"
    r"|\d{3}(?P<t>[ -]?)\d{6}(?P=t)\d{4,5})"
    r"(?![\w\-]|[.,]\d)"
)

_CARD_WORDS = words(
    "card", "visa", "mastercard", "amex", "credit", "debit", "cc", "kreditkarte", "carte",
)  # fmt: skip


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number carries in its last digit."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    """The issuer whose range and length fit ``digits``, or None. Ranges as the
    networks publish them (Mastercard's 2-series since 2017, UnionPay's 62 and 81,
    Discover's 644-649 and 65, JCB's 3528-3589, Maestro's 50 and 56-69)."""
    n = len(digits)
    p2 = int(digits[:2])
    p4 = int(digits[:4])
    p6 = int(digits[:6])
    if digits[0] == "4":
        return "visa" if n in (13, 16, 19) else None
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return "mastercard" if n == 16 else None
    if p2 in (34, 37):
        return "amex" if n == 15 else None
    if 2200 <= p4 <= 2204:
        return "mir" if 16 <= n <= 19 else None
    if p4 == 6011 or 644 <= int(digits[:3]) <= 649 or p2 == 65 or 622126 <= p6 <= 622925:
        return "discover" if 16 <= n <= 19 else None
    if p2 == 35 or p4 in (1800, 2131):
        # JCB issues from 3528-3589; test data (and some co-branded ranges) use all of 35.
        return "jcb" if 16 <= n <= 19 or (n == 15 and p2 != 35) else None
    if 300 <= int(digits[:3]) <= 305 or p2 in (36, 38, 39):
        return "diners" if 14 <= n <= 19 else None
    if p2 == 62 or 8100 <= p4 <= 8171:
        return "unionpay" if 16 <= n <= 19 else None
    if p2 == 50 or 56 <= p2 <= 69:
        return "maestro" if 12 <= n <= 19 else None
    return None


def find_cards(text: str, lower: str) -> list[Match]:
    """Card numbers: issuer range and length, Luhn, context words."""
    found: list[Match] = []
    for m in _CARD.finditer(text):
        digits = m.group().replace(" ", "").replace("-", "")
        if card_brand(digits) is None or not luhn_ok(digits) or len(set(digits)) < 2:
            continue
        score = 0.9
        start, end = m.span()
        if near(lower, start, end, _CARD_WORDS, 40):
            score = 1.0
        elif near(lower, start, end, NOT_PERSONAL_WORDS, 24):
            score = 0.5
        found.append(Match(start, end, "CREDIT_CARD", clamp(score)))
    return found


#: IBAN length per country (ISO 13616 registry, including the newer members).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
    "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip

# Country, check digits, then the BBAN bare or in groups of four separated by single
# spaces (the printed form); the last group may be short.
_IBAN = re.compile(
    r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}"
    r"(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?(?![A-Za-z0-9])"
)


def iban_ok(compact: str) -> bool:
    """Registered country, its length, and ISO 7064 mod 97-10 (the remainder is 1)."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def find_ibans(text: str, lower: str) -> list[Match]:
    """IBANs, bare or grouped in fours; a grouped one may have caught a following
    word of four capitals, so a failed candidate is retried without its last group."""
    found: list[Match] = []
    for m in _IBAN.finditer(text):
        start = m.start()
        candidate = m.group()
        while candidate:
            compact = candidate.replace(" ", "")
            if iban_ok(compact):
                found.append(Match(start, start + len(candidate), "IBAN_CODE", 1.0))
                break
            cut = candidate.rfind(" ")
            candidate = candidate[:cut] if cut > 4 else ""
    return found

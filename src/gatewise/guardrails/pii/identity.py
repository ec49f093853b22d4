"""US Social Security numbers and dates of birth: identifiers that need context.

An SSN has no checksum, only rules on its parts (the Social Security
Administration never issues area 000, 666 or 900-999, group 00 or serial 0000,
and a few numbers are known to be published examples). Written ``123-45-6789``
(or with spaces) it is rarely anything else; nine bare digits are just a
number, so they count only next to words such as "SSN" or "social security".

A date is personal only when it is someone's birth date: a date (numeric in
the usual orders, or with an English, German or French month name) counts only
when a birth word ("born", "DOB", "date of birth", "geboren", "née", ...) is
just before it or right after it. Timestamps and ISO dates elsewhere never fire.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re

from gatewise.guardrails.pii.recognizer import NOT_PERSONAL_WORDS, Match, clamp, near, words

# Each pattern consumes its first digit before the lookbehind (which then checks the
# character before it): a pattern that starts with a character class lets the regex
# engine skip non-digits quickly, about twice as fast as a leading lookbehind.
_SSN = re.compile(r"\d(?<![\w\-./]\d)\d\d([- ])\d\d\1\d{4}(?![\w\-]|[./]\d)")
_SSN_BARE = re.compile(r"\d(?<![\w\-./]\d)\d{8}(?![\w\-]|[./]\d)")
_SSN_WORDS = words("ssn", "social security", "ss#", "ss #", "ss no", "soc sec", "taxpayer")
#: Numbers the SSA has voided or that are widely printed as examples.
_SSN_VOID = frozenset({"078051120", "219099999", "123456789"})


def ssn_ok(digits: str) -> bool:
    """The SSA's rules on area, group and serial (nine digits, no separators)."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return (
        area not in ("000", "666")
        and area[0] != "9"
        and group != "00"
        and serial != "0000"
        and digits not in _SSN_VOID
        and len(set(digits)) > 1
    )


def find_ssns(text: str, lower: str) -> list[Match]:
    """SSNs written with dashes or spaces; bare nine digits only beside an SSN word."""
    found: list[Match] = []
    for m in _SSN.finditer(text):
        digits = m.group().replace(m.group(1), "")
        if not ssn_ok(digits):
            continue
        start, end = m.span()
        score = 0.85 if m.group(1) == "-" else 0.7
        if near(lower, start, end, _SSN_WORDS, 40):
            score += 0.15
        elif near(lower, start, end, NOT_PERSONAL_WORDS, 24):
            score -= 0.4
        found.append(Match(start, end, "US_SSN", clamp(score)))
    if _SSN_WORDS.search(lower):
        for m in _SSN_BARE.finditer(text):
            start, end = m.span()
            if ssn_ok(m.group()) and near(lower, start, end, _SSN_WORDS, 40):
                found.append(Match(start, end, "US_SSN", 0.75))
    return found


_BIRTH_WORDS = re.compile(
    r"\b(?:born|dob|d\.o\.b\.?|date of birth|birth ?date|birthday|b-day|"
    r"geboren|geb\.|geburtsdatum|geburtstag|n[ée]e?|date de naissance|naissance|"
    r"fecha de nacimiento|nacid[oa])(?!\w)"
)

_MONTHS = {
    "january": 1, "jan": 1, "januar": 1, "janvier": 1, "jänner": 1,
    "february": 2, "feb": 2, "februar": 2, "février": 2, "fevrier": 2,
    "march": 3, "mar": 3, "märz": 3, "maerz": 3, "mars": 3,
    "april": 4, "apr": 4, "avril": 4,
    "may": 5, "mai": 5,
    "june": 6, "jun": 6, "juni": 6, "juin": 6,
    "july": 7, "jul": 7, "juli": 7, "juillet": 7,
    "august": 8, "aug": 8, "août": 8, "aout": 8,
    "september": 9, "sep": 9, "sept": 9, "septembre": 9,
    "october": 10, "oct": 10, "oktober": 10, "octobre": 10,
    "november": 11, "nov": 11, "novembre": 11,
    "december": 12, "dec": 12, "dezember": 12, "décembre": 12, "decembre": 12,
}  # fmt: skip
_MONTH = "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True))

_NUMERIC_DATE = re.compile(
    r"\d(?<![\w./\-]\d)(\d{0,3})([./\-])(\d{1,2})\2(\d{2,4})(?![\w]|[./\-]\d)"
)
# Run on the lowered text: "12 March 1985", "12. März 1985", "1er mars 1985",
# "March 12, 1985", "12th of March 1985".
_TEXT_DATE = re.compile(
    rf"(?<!\w)(?:(\d{{1,2}})(?:st|nd|rd|th|er|\.)?\s+(?:of\s+)?({_MONTH})\.?,?\s+(\d{{4}})"
    rf"|({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}}))(?!\w)"
)


def _real_date(year: int, month: int, day: int) -> bool:
    if year < 100:
        year += 1900 if year > dt.date.today().year % 100 else 2000
    if not 1900 <= year <= dt.date.today().year:
        return False
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _numeric_ok(a: str, b: str, c: str) -> bool:
    """Any of year-month-day, day-month-year or month-day-year is a real past date."""
    x, y, z = int(a), int(b), int(c)  # a: the first number (see _NUMERIC_DATE's groups)
    if len(a) == 4:
        return len(c) <= 2 and _real_date(x, y, z)
    if len(a) > 2:
        return False
    return _real_date(z, y, x) or _real_date(z, x, y)


def find_birth_dates(text: str, lower: str) -> list[Match]:
    """Dates with a birth word within 48 characters before or 24 after."""
    anchors = [(m.start(), m.end()) for m in _BIRTH_WORDS.finditer(lower)]
    if not anchors:
        return []
    # Dates are looked for only in windows around birth words, not in the whole text.
    windows: list[tuple[int, int]] = []
    for a_start, a_end in anchors:
        low, high = max(0, a_start - 40), a_end + 56
        if windows and low <= windows[-1][1]:
            windows[-1] = (windows[-1][0], high)
        else:
            windows.append((low, high))
    found: list[Match] = []
    spans: set[tuple[int, int]] = set()
    for low, high in windows:
        # endpos leaves room for a date starting at ``high`` (30 characters at most),
        # so the lookahead after any date that starts in the window sees the real text.
        stop = min(len(text), high + 40)
        for m in _NUMERIC_DATE.finditer(text, low, stop):
            if m.start() > high:
                break
            if _numeric_ok(text[m.start() : m.start(2)], m.group(3), m.group(4)):
                spans.add(m.span())
        for m in _TEXT_DATE.finditer(lower, low, stop):
            if m.start() > high:
                break
            if m.group(1):
                day, month, year = m.group(1), m.group(2), m.group(3)
            else:
                month, day, year = m.group(4), m.group(5), m.group(6)
            if _real_date(int(year), _MONTHS[month], int(day)):
                spans.add(m.span())
    candidates = sorted(spans)
    starts = [a_start for a_start, _ in anchors]
    ends = [a_end for _, a_end in anchors]
    for i, (start, end) in enumerate(candidates):
        previous_end = candidates[i - 1][1] if i else 0
        next_start = candidates[i + 1][0] if i + 1 < len(candidates) else len(text)
        # The nearest birth word ending before the date, and the nearest starting after it.
        before = bisect.bisect_right(ends, start) - 1
        after = bisect.bisect_left(starts, end)
        if (
            before >= 0
            and max(start - 48, previous_end) <= ends[before]
            and _same_clause(text, ends[before], start)
        ) or (
            after < len(starts)
            and starts[after] <= min(end + 24, next_start)
            and _same_clause(text, end, starts[after])
        ):
            found.append(Match(start, end, "DATE_OF_BIRTH", 0.85))
    return found


def _same_clause(text: str, start: int, end: int) -> bool:
    """No sentence or clause break between a birth word and its date."""
    gap = text[start:end]
    return not any(stop in gap for stop in ".!?;\n")

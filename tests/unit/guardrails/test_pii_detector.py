"""PiiDetector: each entity type with exact spans, checksums, look-alikes, offsets."""

from __future__ import annotations

import itertools

import pytest

from gatewise.guardrails.base import Finding, Span
from gatewise.guardrails.pii import PiiDetector

detector = PiiDetector()


def found(text: str, threshold: float = 0.5) -> list[tuple[str, str]]:
    """(type, matched text) for every match at or above ``threshold``."""
    return [(m.type, text[m.start : m.end]) for m in detector.matches(text) if m.score >= threshold]


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        (
            "write to jane.doe+news@mail.example.co.uk today",
            "jane.doe+news@mail.example.co.uk",
            "EMAIL_ADDRESS",
        ),
        ("call +44 (0)20 7946 0958 now", "+44 (0)20 7946 0958", "PHONE_NUMBER"),
        ("call +1-202-555-0143 now", "+1-202-555-0143", "PHONE_NUMBER"),
        ("ring (202) 555-0143 ext. 12 please", "(202) 555-0143 ext. 12", "PHONE_NUMBER"),
        ("Tel. 030 12345678", "030 12345678", "PHONE_NUMBER"),
        ("Mon numéro : 01 23 45 67 89", "01 23 45 67 89", "PHONE_NUMBER"),
        ("Handy 0151/2345678", "0151/2345678", "PHONE_NUMBER"),
        ("UK mobile 07700 900123", "07700 900123", "PHONE_NUMBER"),
        ("reach me on +33.1.23.45.67.89", "+33.1.23.45.67.89", "PHONE_NUMBER"),
        ("card 4111 1111 1111 1111 exp 04/27", "4111 1111 1111 1111", "CREDIT_CARD"),
        ("amex 3782-822463-10005", "3782-822463-10005", "CREDIT_CARD"),
        ("mastercard 2221000000000009", "2221000000000009", "CREDIT_CARD"),
        ("mc 5555 5555 5555 4444", "5555 5555 5555 4444", "CREDIT_CARD"),
        ("discover 6011111111111117", "6011111111111117", "CREDIT_CARD"),
        ("jcb 3530111333300000", "3530111333300000", "CREDIT_CARD"),
        ("diners 3056 930902 5904", "3056 930902 5904", "CREDIT_CARD"),
        ("unionpay 6200000000000005", "6200000000000005", "CREDIT_CARD"),
        ("maestro 6759649826438453", "6759649826438453", "CREDIT_CARD"),
        ("IBAN DE89 3704 0044 0532 0130 00.", "DE89 3704 0044 0532 0130 00", "IBAN_CODE"),
        ("pay GB82WEST12345698765432 now", "GB82WEST12345698765432", "IBAN_CODE"),
        ("to FR1420041010050500013M02606", "FR1420041010050500013M02606", "IBAN_CODE"),
        ("SSN 536-22-1234 on file", "536-22-1234", "US_SSN"),
        ("my ssn is 536 22 1234", "536 22 1234", "US_SSN"),
        ("SSN: 536221234", "536221234", "US_SSN"),
        ("from 203.0.113.7 at noon", "203.0.113.7", "IP_ADDRESS"),
        ("from 2001:db8:85a3::8a2e:370:7334 too", "2001:db8:85a3::8a2e:370:7334", "IP_ADDRESS"),
        ("mapped ::ffff:192.0.2.128 here", "::ffff:192.0.2.128", "IP_ADDRESS"),
        ("I was born on 12 March 1985.", "12 March 1985", "DATE_OF_BIRTH"),
        ("DOB: 1985-03-12", "1985-03-12", "DATE_OF_BIRTH"),
        ("Geboren am 03.04.1979 in Köln", "03.04.1979", "DATE_OF_BIRTH"),
        ("née le 1er mars 1970", "1er mars 1970", "DATE_OF_BIRTH"),
        ("date of birth: March 3rd, 1990", "March 3rd, 1990", "DATE_OF_BIRTH"),
    ],
)
def test_each_type_is_found_with_its_exact_span(text: str, value: str, kind: str) -> None:
    assert found(text) == [(kind, value)]


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # bad Luhn
        "card 1234 5678 9012 3456",  # no issuer, bad Luhn
        "card 9111 1111 1111 1111",  # Luhn-valid run of no issuer's range
        "IBAN DE89 3704 0044 0532 0130 01",  # bad mod-97
        "IBAN DE89370400440532013",  # wrong length for DE
        "SSN 000-12-3456",
        "SSN 666-12-3456",
        "SSN 912-12-3456",
        "SSN 123-00-4567",
        "SSN 123-45-0000",
        "SSN 078-05-1120",  # the Woolworth wallet card
        "ip 256.1.1.1 or 1.2.3",
        "born on 31.02.1980",  # no such day
    ],
)
def test_checksum_and_validity_failures_are_rejected(text: str) -> None:
    assert found(text, threshold=0.0) == []


@pytest.mark.parametrize(
    "text",
    [
        "ISBN 978-3-16-148410-0 and ISBN-10 0-306-40615-2",
        "Book 9780306406157",
        "request 123e4567-e89b-12d3-a456-426614174000 failed",
        "Upgrade to version 1.2.3.4 now; running v10.0.0.1; build 2.3.4.5",
        "OID 1.3.6.1.4.1.311 is registered",
        "Order #4920-1123-8890 shipped; order number 20240115093",
        "The job ran at 2024-01-15T10:30:45Z and at 2024-01-15 10:30:45",
        "Meeting on 2024-01-15 at 10:30.",
        "Tracking 1Z999AA10123456784, USPS 9400 1000 0000 0000 0000 00",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "MAC 00:1A:2B:3C:4D:5E and time 10:30:45, C++ std::vector, Ruby Dead::Beef",
        "Price 1,234,567.89 EUR; ZIP 94105-1234; pi 3.14159265",
        "Coordinates 48.858370, 2.294481",
        "unix time 1700000000",
        "call it a day",
    ],
)
def test_look_alikes_are_not_flagged(text: str) -> None:
    assert found(text) == []


def test_context_words_raise_and_lower_scores() -> None:
    plain = detector.matches("202-555-0143")[0].score
    phone = detector.matches("phone: 202-555-0143")[0].score
    order = detector.matches("order no 202-555-0143")
    assert phone > plain >= 0.5
    assert order == [] or order[0].score < 0.5
    assert detector.matches("card 4111 1111 1111 1111")[0].score == 1.0
    assert detector.matches("tracking 4111 1111 1111 1111")[0].score < 0.9


def test_offsets_are_code_points_after_non_ascii_text() -> None:
    text = "😀🎉 Grüße — mail ünïcode@exämple.com, ☎ +49 30 1234567, İstanbul 4111-1111-1111-1111"
    spans = [s for f in detector.detect(text) for s in f.spans]
    assert [(s.type, s.start, s.end) for s in spans] == [
        ("EMAIL_ADDRESS", 16, 35),
        ("PHONE_NUMBER", 39, 53),
        ("CREDIT_CARD", 64, 83),
    ]
    assert [text[s.start : s.end] for s in spans] == [
        "ünïcode@exämple.com",
        "+49 30 1234567",
        "4111-1111-1111-1111",
    ]


def test_one_finding_per_type_with_every_span_sorted() -> None:
    text = "a@x.io, 536-22-1234, b@y.io and 4111 1111 1111 1111; c@z.io"
    findings = detector.detect(text)
    assert [f.category for f in findings] == ["EMAIL_ADDRESS", "US_SSN", "CREDIT_CARD"]
    email = findings[0]
    assert email == Finding(
        guardrail="pii",
        category="EMAIL_ADDRESS",
        score=1.0,
        spans=(
            Span(0, 6, "EMAIL_ADDRESS"),
            Span(21, 27, "EMAIL_ADDRESS"),
            Span(53, 59, "EMAIL_ADDRESS"),
        ),
    )
    every = sorted((s for f in findings for s in f.spans), key=lambda s: s.start)
    assert all(a.end <= b.start for a, b in itertools.pairwise(every))


def test_entity_types_can_be_chosen() -> None:
    only_email = PiiDetector({"EMAIL_ADDRESS"})
    assert [f.category for f in only_email.detect("a@x.io 536-22-1234")] == ["EMAIL_ADDRESS"]
    with pytest.raises(ValueError, match="unknown"):
        PiiDetector({"PASSPORT"})


def test_empty_and_digitless_texts() -> None:
    assert detector.detect("") == []
    assert detector.detect("no personal data here at all") == []

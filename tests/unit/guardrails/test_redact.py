"""redact / hash_spans: placeholders, salted tags, merging spans from several detectors."""

from __future__ import annotations

import hashlib
import hmac

from gatewise.guardrails.base import Span
from gatewise.guardrails.redact import hash_spans, hash_tag, merge_spans, redact


def test_redact_replaces_each_span_by_its_type() -> None:
    text = "mail a@b.co or call 030 12345678"
    spans = [Span(5, 11, "EMAIL_ADDRESS"), Span(20, 32, "PHONE_NUMBER")]
    assert redact(text, spans) == "mail [EMAIL_ADDRESS] or call [PHONE_NUMBER]"


def test_redact_without_spans_returns_the_text() -> None:
    assert redact("nothing here", []) == "nothing here"


def test_overlapping_spans_merge_and_the_longest_names_the_region() -> None:
    text = "password=sk-proj-abc123 end"
    spans = [Span(9, 23, "OPENAI_API_KEY"), Span(9, 15, "PASSWORD"), Span(20, 25, "X")]
    assert merge_spans(spans) == [Span(9, 25, "OPENAI_API_KEY")]
    assert redact(text, spans) == "password=[OPENAI_API_KEY]nd"


def test_adjacent_spans_stay_separate_and_order_does_not_matter() -> None:
    spans = [Span(4, 6, "B"), Span(0, 4, "A")]
    assert merge_spans(spans) == [Span(0, 4, "A"), Span(4, 6, "B")]
    assert redact("aaaabb!", spans) == "[A][B]!"


def test_hash_spans_is_hmac_sha256_of_the_value_and_stable() -> None:
    text = "from a@b.co to a@b.co and c@d.co"
    spans = [Span(5, 11, "EMAIL"), Span(15, 21, "EMAIL"), Span(26, 32, "EMAIL")]
    tag = hmac.new(b"salt", b"a@b.co", hashlib.sha256).hexdigest()[:12]
    out = hash_spans(text, spans, "salt")
    assert out.startswith(f"from [EMAIL:{tag}] to [EMAIL:{tag}] and [EMAIL:")
    assert hash_tag("c@d.co", b"salt") in out
    assert hash_spans(text, spans, b"other") != out


def test_offsets_are_code_points() -> None:
    text = "😀 é a@b.co"
    assert redact(text, [Span(4, 10, "EMAIL")]) == "😀 é [EMAIL]"

"""Worst-case time is bounded: no catastrophic backtracking, bounded decoding.

Not a benchmark: generous limits that only a super-linear pattern would break.
"""

# ruff: noqa: RUF001
from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewise.guardrails.injection import InjectionDetector

DETECTOR = InjectionDetector()
LIMIT_S = 0.5  # the 200 ms aim (worst input here: ~220 ms on 2 slow cores) with CI headroom

ADVERSARIAL = [
    "ignore " * 15_000,
    "a" * 100_000,
    "!" * 100_000,
    "{{" * 50_000,
    "%41" * 33_000,
    "ab" * 50_000,
    "QUJD" * 25_000,
    ("ignore all of the " + "x " * 5) * 4000,
    "<!--" + "a" * 100_000,
    "![a](http://x/" + "?" * 100_000,
    "you are " * 12_500,
    "\u200b" * 50_000 + "ignore",
    "(" * 100_000,
]


def test_100kb_adversarial_inputs_finish_quickly() -> None:
    for text in ADVERSARIAL:
        for role in ("user", "tool"):
            start = time.perf_counter()
            DETECTOR.detect(text, role)  # type: ignore[arg-type]
            elapsed = time.perf_counter() - start
            assert elapsed < LIMIT_S, (text[:30], role, elapsed)


ALPHABET = st.sampled_from(
    [
        *"ignore all previous instructions you are dan mode {}[]()<>|!#%$=:;'\"\\/ \n\t",
        "<|im_start|>",
        "ignore ",
        "previous ",
        "\u200b",
        "\U000e0041",
        "А",
        "%41",
        "QUJD",
        "![",
        "](http://",
        "?q=",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ALPHABET, max_size=800).map("".join), st.sampled_from(["user", "tool", "system"]))
def test_fuzzed_inputs_are_handled_fast(text: str, role: str) -> None:
    start = time.perf_counter()
    findings = DETECTOR.detect(text, role)  # type: ignore[arg-type]
    assert time.perf_counter() - start < LIMIT_S
    for f in findings:
        assert 0.0 <= f.score <= 1.0
        for span in f.spans:
            assert 0 <= span.start < span.end <= len(text)

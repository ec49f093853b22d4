"""No input makes the detectors slow: every pattern is linear in the text.

Each adversarial text is 100 KB built to make a careless pattern backtrack or
rescan (long runs that almost match, many starts without an end). A generous
bound (200 ms for both detectors on one text) catches a quadratic pattern,
which takes seconds to minutes on these, without flaking on a slow machine.
"""

from __future__ import annotations

import time

import pytest

from gatewise.guardrails.pii import PiiDetector
from gatewise.guardrails.secrets import SecretsDetector

SIZE = 100_000
ADVERSARIAL = {
    "digits": "1" * SIZE,
    "digit groups": "1 " * (SIZE // 2),
    "dashed groups": "123-" * (SIZE // 4),
    "dotted digits": "1." * (SIZE // 2),
    "plus and parens": "+(1) " * (SIZE // 5),
    "local parts": "a" * SIZE + "@",
    "at signs": "a@" * (SIZE // 2),
    "dotted domain": "a@" + "b." * (SIZE // 2),
    "upper case": "A" * SIZE,
    "iban-ish": "DE89 " + "3704 " * (SIZE // 5),
    "colons": "1" + ":" * SIZE,
    "hex and colons": "1a:" * (SIZE // 3),
    "ipv6-ish": "1::" + "a1:" * (SIZE // 3),
    "birth words and dates": "born 1.1." * (SIZE // 9),
    "month names": "born 1 march " * (SIZE // 13),
    "birth dates": "born 01.02.1990 " * (SIZE // 16),
    "dates with a birth word at the end": "1990-02-01 " * (SIZE // 11) + "born",
    "phone words and digits": "call 1 " * (SIZE // 7),
    "card-like groups": "4111 " * (SIZE // 5),
    "pem headers": "-----BEGIN PRIVATE KEY-----" * (SIZE // 27),
    "jwt starts": "eyJ" * (SIZE // 3),
    "jwt-ish": " eyJ" + "a" * SIZE + ".",
    "password keys": "password=" * (SIZE // 9),
    "password runs": "password: " + "x" * SIZE,
    "url credentials": "a://" + "b:" * (SIZE // 2),
    "token prefixes": "sk-" * (SIZE // 3),
    "base64 run": "aws " + "A/+a" * (SIZE // 4),
    "emoji": "😀" * SIZE,
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_100kb_input_finishes_quickly(name: str) -> None:
    text = ADVERSARIAL[name]
    pii, secrets = PiiDetector(), SecretsDetector()
    start = time.perf_counter()
    pii.detect(text)
    secrets.detect(text)
    elapsed = time.perf_counter() - start
    # A guard against runaway backtracking (seconds to hours), not a benchmark: about
    # 0.1 s on a quiet machine, 0.6 s seen with both cores busy.
    assert elapsed < 1.5, f"{name}: {elapsed * 1000:.0f} ms"

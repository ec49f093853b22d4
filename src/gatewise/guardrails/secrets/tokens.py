"""Provider credentials recognised by their published prefixes and shapes.

Most API keys announce themselves (``sk-proj-``, ``AKIA``, ``ghp_``,
``glpat-``, ``xoxb-``, ``sk_live_``, ``AIza``...), which makes them precise:
each rule has a *marker* (a plain substring) that must be in the text before
its pattern runs, so a text without any of them costs a few substring tests.
A prefix alone is not enough: the body must look random (``sk-xxxxxxxx`` and
``ghp_your_token_here`` are documentation), see ``entropy.looks_random``, and
must not contain a placeholder word ("your", "token", "here", ...).

AWS secret access keys have no prefix: 40 base64 characters count only within
120 characters of an AWS word or of an access key id, and never when they are
all hex (a SHA-1, such as a git commit id, is 40 hex digits).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gatewise.guardrails.pii.recognizer import Match
from gatewise.guardrails.secrets.entropy import looks_random


@dataclass(frozen=True, slots=True)
class TokenRule:
    """A prefixed credential: its category, markers (any one must be present), pattern."""

    category: str
    markers: tuple[str, ...]
    pattern: re.Pattern[str]
    score: float = 0.95
    #: The part of the match that must look random (after the prefix).
    body: Callable[[str], str] = lambda token: token
    #: Character classes the body needs (AWS key ids are upper case and digits only).
    min_classes: int = 2


def _after(prefix_end: re.Pattern[str]) -> Callable[[str], str]:
    def body(token: str) -> str:
        m = prefix_end.match(token)
        return token[m.end() :] if m else token

    return body


_B = r"(?![\w\-])"  # the token ends here: no word character or dash follows

TOKEN_RULES: tuple[TokenRule, ...] = (
    TokenRule(
        "ANTHROPIC_API_KEY",
        ("sk-ant-",),
        re.compile(r"(?<![\w\-])sk-ant-(?:api|admin|oat|sid)\d\d-[A-Za-z0-9_\-]{20,200}" + _B),
        0.99,
        _after(re.compile(r"sk-ant-[a-z]+\d\d-")),
    ),
    TokenRule(
        "OPENAI_API_KEY",
        ("sk-",),
        re.compile(
            r"(?<![\w\-])sk-(?!ant-)(?:(?:proj|svcacct|admin|None)-)?[A-Za-z0-9_\-]{20,200}" + _B
        ),
        0.95,
        _after(re.compile(r"sk-(?:(?:proj|svcacct|admin|None)-)?")),
    ),
    TokenRule(
        "GOOGLE_API_KEY",
        ("AIza",),
        re.compile(r"(?<![\w\-])AIza[0-9A-Za-z_\-]{35}" + _B),
        0.95,
        lambda token: token[4:],
    ),
    TokenRule(
        "AWS_ACCESS_KEY_ID",
        ("AKIA", "ASIA", "ABIA", "ACCA"),
        re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Za-z0-9])"),
        0.95,
        lambda token: token[4:],
        1,
    ),
    TokenRule(
        "GITHUB_TOKEN",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"(?<!\w)(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_\w{60,251})(?!\w)"),
        0.99,
        _after(re.compile(r"gh[pousr]_|github_pat_")),
    ),
    TokenRule(
        "GITLAB_TOKEN",
        (
            "glpat-",
            "gldt-",
            "glrt-",
            "glcbt-",
            "glptt-",
            "glft-",
            "glimt-",
            "glsoat-",
            "gloas-",
            "glagent-",
            "glfeed-",
            "GR1348941",
        ),
        re.compile(
            r"(?<![\w\-])(?:gl(?:pat|dt|rt|cbt|ptt|ft|imt|soat|oas|agent|feed)-|GR1348941)"
            r"[A-Za-z0-9_\-]{20,200}" + _B
        ),
        0.95,
        _after(re.compile(r"gl[a-z]+-|GR1348941")),
    ),
    TokenRule(
        "SLACK_TOKEN",
        ("xox", "xapp-"),
        re.compile(r"(?<![\w\-])(?:xox[abposre]|xapp)-[A-Za-z0-9\-]{10,250}" + _B),
        0.95,
        lambda token: token[5:],
    ),
    TokenRule(
        "SLACK_WEBHOOK_URL",
        ("hooks.slack.com",),
        re.compile(
            r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/\-]{20,}"
        ),
        0.95,
        lambda url: url.rsplit("/", 1)[-1],
    ),
    TokenRule(
        "STRIPE_API_KEY",
        ("sk_live_", "rk_live_", "sk_test_", "rk_test_"),
        re.compile(r"(?<!\w)[sr]k_(?:live|test)_[A-Za-z0-9]{20,247}(?!\w)"),
        0.95,
        lambda token: token[8:],
    ),
)

_PLACEHOLDER_WORDS = ("your", "token", "here", "xxxx", "placeholder", "insert", "redacted")


def _placeholder(body: str) -> bool:
    """Documentation's stand-ins (``xoxb-your-token-here``); AWS's own published
    example key (``...EXAMPLE``) is deliberately not one: it is key-shaped and tests
    and samples use it as a positive."""
    lowered = body.lower()
    return any(word in lowered for word in _PLACEHOLDER_WORDS)


_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_WORDS = ("aws", "secret_access_key", "secret access key", "secretaccesskey")
_HEX = frozenset("0123456789abcdefABCDEF")


#: Any rule's marker: one search tells whether a text needs the rules at all (most texts
#: hold none, and one pass in C is several times cheaper than a test per marker).
_ANY_MARKER = re.compile(
    "|".join(
        re.escape(marker)
        for marker in sorted(
            {m for rule in TOKEN_RULES for m in rule.markers}, key=len, reverse=True
        )
    )
)


def find_tokens(text: str, lower: str) -> list[Match]:
    """Every prefixed credential whose body looks random, then AWS secret keys."""
    found: list[Match] = []
    for rule in TOKEN_RULES if _ANY_MARKER.search(text) else ():
        if not any(marker in text for marker in rule.markers):
            continue
        for m in rule.pattern.finditer(text):
            body = rule.body(m.group())
            if looks_random(body, 3.0, rule.min_classes) and not _placeholder(body):
                found.append(Match(m.start(), m.end(), rule.category, rule.score))
    anchors = [m.start for m in found if m.type == "AWS_ACCESS_KEY_ID"]
    found.extend(_aws_secrets(text, lower, anchors))
    return found


def _aws_secrets(text: str, lower: str, key_ids: list[int]) -> list[Match]:
    if not key_ids and not any(word in lower for word in _AWS_WORDS):
        return []
    found: list[Match] = []
    for m in _AWS_SECRET.finditer(text):
        value = m.group()
        if set(value) <= _HEX or not looks_random(value, min_entropy=4.0, min_classes=3):
            continue
        start, end = m.span()
        window = lower[max(0, start - 120) : end + 120]
        if any(abs(k - start) <= 160 for k in key_ids) or any(
            word in window for word in _AWS_WORDS
        ):
            found.append(Match(start, end, "AWS_SECRET_ACCESS_KEY", 0.9))
    return found

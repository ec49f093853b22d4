"""Passwords in assignments, key-value pairs, prose and connection strings.

Configuration pasted into a prompt is the usual way a password leaks:
``password=...``, ``"password": "..."``, ``DB_PASSWORD: ...``, ``pwd := ...``,
"my password is ...", ``postgres://user:pass@host``. The span is the value
only, so masking keeps the key ("password=[PASSWORD]") and the text readable.

Most values after such a key are not secrets but placeholders, references or
code: ``changeme``, ``<your password>``, ``${DB_PASSWORD}``, ``{{ secret }}``,
``os.environ["PW"]``, ``None``, ``****``. A value counts only if it is none of
those and looks typed-at-random: two or more character classes and at least
2.5 bits of entropy per character (a long one-class value needs 3.0). "is" in
prose asks more (three classes, eight characters), since "the password is
required" is not a leak.
"""

from __future__ import annotations

import re

from gatewise.guardrails.pii.recognizer import Match
from gatewise.guardrails.secrets.entropy import char_classes, shannon

_KEY = r"(?:passw(?:or)?d|passwort|mot_de_passe|passphrase|pwd|pass)"
_ASSIGNMENT = re.compile(
    r"(?i)" + _KEY + r"(?![a-z])[\w.\-]{0,24}[\"']?[ \t]*"
    r"(?P<sep>:=|=>|[:=]|[ \t]+is(?:[ \t]+set[ \t]+to)?[ \t])[ \t]*"
    r"(?:(?P<q>[\"'`])(?P<quoted>[^\"'`\r\n]{1,200})(?P=q)|(?P<bare>[^\s\"'`]{1,200}))"
)
_URL_CREDENTIALS = re.compile(
    r"(?i)\b[a-z][a-z0-9+.\-]{1,20}://[^\s:/@]{1,64}:(?P<pw>[^\s/]{1,128})@[\w.\-\[\]]+"
)
_PLACEHOLDER_WORDS = (
    "your", "example", "placeholder", "changeme", "change_me", "change-me", "xxx", "***",
    "...", "redacted", "dummy", "sample", "secret", "password", "passwd", "<", ">",
    "${", "{{", "%(", "$(", "process.env", "environ", "getenv", "null", "none", "undefined",
    "todo", "fixme", "insert", "enter", "here",
)  # fmt: skip
_CODE_REFERENCE = re.compile(
    r"^(?:\$\{|\$\(|\$[A-Z_][A-Z0-9_]*$|%\(|%[A-Z_]+%$"
    r"|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$|[A-Za-z_]\w*\(|[A-Z_]+$)"
)


def is_placeholder(value: str) -> bool:
    """Documentation and code, not a password: see the module docstring."""
    lowered = value.lower()
    return (
        any(word in lowered for word in _PLACEHOLDER_WORDS)
        or _CODE_REFERENCE.match(value) is not None
        or len(set(value)) <= 2
    )


def password_like(value: str, strict: bool = False) -> bool:
    """A value that is plausibly a real password."""
    if len(value) < (8 if strict else 6) or is_placeholder(value):
        return False
    classes = char_classes(value)
    entropy = shannon(value)
    if strict:
        return classes >= 3 and entropy >= 2.5
    return (classes >= 2 and entropy >= 2.5) or (len(value) >= 12 and entropy >= 3.0)


def find_passwords(text: str, lower: str) -> list[Match]:
    """Password values after a password key, and the password part of URL credentials."""
    found: list[Match] = []
    if any(marker in lower for marker in ("pass", "pwd", "mot_de")):
        for m in _ASSIGNMENT.finditer(text):
            group = "quoted" if m.group("quoted") is not None else "bare"
            value = m.group(group)
            if group == "bare":  # f(password=abc), {pwd: abc}, "pw=abc;": not the value
                value = value.rstrip(",;)}]")
            strict = m.group("sep").strip().lower().startswith("is")
            if password_like(value, strict=strict):
                score = 0.9 if char_classes(value) >= 3 else 0.75
                start = m.start(group)
                found.append(Match(start, start + len(value), "PASSWORD", score))
    if "://" in text:
        for m in _URL_CREDENTIALS.finditer(text):
            value = m.group("pw")
            if not is_placeholder(value) and len(value) >= 3:
                found.append(Match(m.start("pw"), m.end("pw"), "PASSWORD", 0.9))
    return found

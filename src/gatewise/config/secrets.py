"""Secret references: ``${env:NAME}`` and ``${file:PATH}``.

The configuration never holds a secret's value, only a reference to where it
lives. References are checked for syntax when the config is validated (so CI
can validate without production secrets) and resolved when the gateway starts.
A resolved value is kept in a ``SecretValue`` whose ``repr`` never shows it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

REFERENCE = re.compile(r"\$\{(env|file):([^}]+)\}")
WHOLE_REFERENCE = re.compile(r"^\$\{(env|file):([^}]+)\}$")

# Shapes of well-known credentials. A literal matching one of these anywhere in
# a config is rejected: it belongs in the environment or a file.
LITERAL_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an OpenAI key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}")),
    ("an Anthropic key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{16,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}")),
    ("an AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}")),
    ("a Gatewise key", re.compile(r"\bgw-[A-Za-z0-9_\-]{32,}")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
)


class SecretResolutionError(Exception):
    """A reference points at an unset variable or an unreadable file."""


class SecretValue:
    """A resolved secret. ``str()`` and ``repr()`` show the reference, never the value."""

    __slots__ = ("_value", "reference")

    def __init__(self, value: str, reference: str) -> None:
        self._value = value
        self.reference = reference

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({self.reference})"

    __str__ = __repr__


def looks_like_literal_secret(text: str) -> str | None:
    """Return what kind of credential ``text`` looks like, or None."""
    if WHOLE_REFERENCE.match(text):
        return None
    for kind, pattern in LITERAL_SECRET_PATTERNS:
        if pattern.search(text):
            return kind
    return None


def is_reference(text: str) -> bool:
    return WHOLE_REFERENCE.match(text) is not None


def resolve_reference(reference: str, base_dir: Path | None = None) -> str:
    """Resolve one whole ``${env:X}`` / ``${file:Y}`` reference to its value."""
    match = WHOLE_REFERENCE.match(reference)
    if match is None:
        raise SecretResolutionError(
            f"{reference!r} is not a ${{env:NAME}} or ${{file:PATH}} reference"
        )
    kind, target = match.group(1), match.group(2).strip()
    if kind == "env":
        value = os.environ.get(target)
        if value is None or value == "":
            raise SecretResolutionError(f"environment variable {target} is not set")
        return value
    path = Path(target).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretResolutionError(f"cannot read secret file {path}: {exc.strerror}") from None


def interpolate(text: str, base_dir: Path | None = None) -> str:
    """Replace every reference inside ``text`` (e.g. a header value) by its value."""
    return REFERENCE.sub(lambda m: resolve_reference(m.group(0), base_dir), text)


def interpolate_url(url: str, base_dir: Path | None = None) -> str:
    """Replace the references inside a URL by their URL-escaped values, so a password
    holding ``@`` or ``/`` stays one field."""
    return REFERENCE.sub(lambda m: quote(resolve_reference(m.group(0), base_dir), safe=""), url)


def resolve(reference: str, base_dir: Path | None = None) -> SecretValue:
    return SecretValue(resolve_reference(reference, base_dir), reference)

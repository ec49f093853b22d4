"""Structured secrets: PEM private key blocks and JSON Web Tokens.

A private key is the whole ``-----BEGIN ... PRIVATE KEY-----`` ...
``-----END ... PRIVATE KEY-----`` block (RSA, EC, DSA, OpenSSH, PKCS#8,
encrypted, PGP's ``PRIVATE KEY BLOCK``), so masking removes all of it. The end
marker is found with ``str.find`` rather than a lazy ``.*?`` so that many
unterminated headers cost one scan, not one scan each. A block cut off
before its end (a truncated paste) still counts, up to where its base64 stops.

A JWT is three base64url parts joined by dots whose first part decodes to a
JSON object with an ``alg``; the check rejects dotted identifiers that merely
start with ``eyJ``.
"""

from __future__ import annotations

import base64
import binascii
import re

import orjson

from gatewise.guardrails.pii.recognizer import Match

_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
_END = re.compile(r"-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
# What follows an unterminated header: header fields ("Proc-Type: ...") and base64
# lines, each at most 80 characters, so that a text of many headers costs little each.
_BODY = re.compile(r"(?:[A-Za-z0-9+/=:,\- \t]{0,80}+\r?\n)*+[A-Za-z0-9+/=]{0,80}+")


def find_private_keys(text: str) -> list[Match]:
    """PEM private key blocks, BEGIN line to END line inclusive."""
    if "-----BEGIN" not in text:
        return []
    found: list[Match] = []
    position = 0
    has_end = True
    while (begin := _BEGIN.search(text, position)) is not None:
        end_match = _END.search(text, begin.end()) if has_end else None
        if end_match is not None:
            found.append(Match(begin.start(), end_match.end(), "PRIVATE_KEY", 1.0))
            position = end_match.end()
            continue
        has_end = False  # no END after this header, so none after any later one
        body = _BODY.match(text, begin.end())
        stop = body.end() if body else begin.end()
        if stop - begin.end() >= 64:
            found.append(Match(begin.start(), stop, "PRIVATE_KEY", 0.9))
        position = max(stop, begin.end())
    return found


_JWT = re.compile(r"(?<![\w\-])eyJ[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]*+")


def _b64url_json(part: str) -> object:
    padded = part + "=" * (-len(part) % 4)
    try:
        return orjson.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError):
        return None


def find_jwts(text: str) -> list[Match]:
    """JWTs whose header decodes to a JSON object with ``alg`` (and payload to JSON)."""
    if "eyJ" not in text:
        return []
    found: list[Match] = []
    for m in _JWT.finditer(text):
        header, payload, _signature = m.group().split(".")
        decoded = _b64url_json(header)
        if isinstance(decoded, dict) and "alg" in decoded and _b64url_json(payload) is not None:
            found.append(Match(m.start(), m.end(), "JWT", 0.95))
    return found

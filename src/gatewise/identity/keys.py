"""Virtual API keys: their format, generation and hashing.

A key reads ``gw-<kid>_<secret>``: ``kid`` is 12 public characters that name
the key (``gw-<kid>`` is the prefix shown in lists and logs), ``secret`` is
32 random bytes in URL-safe base64 (43 characters). Only the SHA-256 of the
whole key is stored: the secret has 256 bits of entropy, so a fast hash is
as strong as a slow one here and keeps authentication at microseconds. The
gateway finds a key's record by ``kid`` and compares hashes in constant time
(``hmac.compare_digest``), so response timing says nothing about the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "gw-"
KID_LENGTH = 12
SECRET_BYTES = 32
_KID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l)
_SECRET_LENGTH = 43  # base64url of 32 bytes, unpadded
KEY_LENGTH = len(KEY_PREFIX) + KID_LENGTH + 1 + _SECRET_LENGTH


def new_kid() -> str:
    return "".join(secrets.choice(_KID_ALPHABET) for _ in range(KID_LENGTH))


def generate_key(kid: str | None = None) -> tuple[str, str]:
    """A new key: (kid, plaintext key). The plaintext is shown once and never stored."""
    kid = kid or new_kid()
    return kid, f"{KEY_PREFIX}{kid}_{secrets.token_urlsafe(SECRET_BYTES)}"


def hash_key(key: str | bytes) -> bytes:
    """The stored form of a key (32 bytes; hex in the database)."""
    data = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(data).digest()


def display_prefix(kid: str) -> str:
    """How a key is shown after creation: ``gw-<kid>``, never any of its secret."""
    return KEY_PREFIX + kid


def kid_of(key: bytes) -> str | None:
    """The kid of a presented key if it has our shape, else None (no decode of junk)."""
    if len(key) != KEY_LENGTH or not key.startswith(b"gw-") or key[15:16] != b"_":
        return None
    try:
        return key[3:15].decode("ascii")
    except UnicodeDecodeError:
        return None


def looks_like_gateway_key(key: bytes) -> bool:
    return key.startswith(b"gw-")


def same_hash(presented: bytes, stored: bytes) -> bool:
    """Constant-time comparison of two key hashes."""
    return hmac.compare_digest(presented, stored)

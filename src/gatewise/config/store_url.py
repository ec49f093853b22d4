"""The ``store.url`` setting's validation, at config load.

String work only (no SQLAlchemy import) so ``config validate`` stays fast. A
database password is a secret: it must be a ``${env:X}`` or ``${file:Y}``
reference, either in the password position or as the whole URL. Resolving the
URL at start-up is the store's job (``gatewise.store.urls``).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from gatewise.config.secrets import REFERENCE, is_reference

SQLITE = "sqlite+aiosqlite"
POSTGRESQL = "postgresql+asyncpg"
SCHEMES = (SQLITE, POSTGRESQL)
DEFAULT_URL = f"{SQLITE}:///gatewise.db"
_PLACEHOLDER = "gatewise-secret-reference"


def check_store_url(url: str) -> str:
    """Raise ``ValueError`` for an unsupported driver or a literal password; return ``url``."""
    if is_reference(url):
        return url
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(
            f"unsupported database URL scheme {scheme!r}; use {SQLITE}:///path/to/file.db "
            f"or {POSTGRESQL}://user:${{env:PGPASSWORD}}@host:5432/dbname"
        )
    # A ${file:/path} reference holds slashes: mask references before parsing the URL.
    masked, count = REFERENCE.subn(_PLACEHOLDER, url)
    parts = urlsplit(masked)
    passwords = [parts.password, *parse_qs(parts.query).get("password", [])]
    for value in passwords:
        if value and value != _PLACEHOLDER:
            raise ValueError(
                "the database password is a literal value; write a reference instead, e.g. "
                f"{POSTGRESQL}://gatewise:${{env:GATEWISE_DB_PASSWORD}}@db:5432/gatewise "
                "or store.url: ${env:GATEWISE_DATABASE_URL}"
            )
    if count and count != sum(1 for value in passwords if value == _PLACEHOLDER):
        raise ValueError(
            "a secret reference may only stand for the password (or for the whole URL)"
        )
    return url

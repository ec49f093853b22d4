"""The ``store.url`` setting: validation (at config load) and resolution (at start).

Validation is string work only (no SQLAlchemy import) so ``config validate``
stays fast. A database password is a secret: it must be a ``${env:X}`` or
``${file:Y}`` reference, either in the password position or as the whole URL.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from gatewise.config.secrets import REFERENCE, interpolate_url, is_reference, resolve_reference

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


def resolve_store_url(url: str, base_dir: Path | None) -> str:
    """The URL to connect to: secrets filled in, a relative SQLite path made absolute.

    Raises ``SecretResolutionError`` when a referenced secret is missing.
    """
    if is_reference(url):
        url = check_store_url(resolve_reference(url, base_dir))
    else:
        url = interpolate_url(url, base_dir)
    if url.startswith(SQLITE + ":///"):
        database, question, query = url[len(SQLITE) + 4 :].partition("?")
        if database and database != ":memory:" and not Path(database).is_absolute():
            base = base_dir if base_dir is not None else Path.cwd()
            url = f"{SQLITE}:///{(base / database).resolve()}{question}{query}"
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a resolved SQLite URL (None for PostgreSQL or in-memory)."""
    if not url.startswith(SQLITE + ":///"):
        return None
    database = url[len(SQLITE) + 4 :].partition("?")[0]
    return Path(database) if database and database != ":memory:" else None


def redacted(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and error messages)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))

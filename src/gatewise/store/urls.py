"""The ``store.url`` setting at start-up: secrets filled in, SQLite paths made absolute.

Validation at config load lives with the config (``gatewise.config.store_url``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from gatewise.config.secrets import interpolate_url, is_reference, resolve_reference
from gatewise.config.store_url import DEFAULT_URL, POSTGRESQL, SCHEMES, SQLITE, check_store_url

__all__ = [
    "DEFAULT_URL",
    "POSTGRESQL",
    "SCHEMES",
    "SQLITE",
    "check_store_url",
    "redacted",
    "resolve_store_url",
    "sqlite_path",
]


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

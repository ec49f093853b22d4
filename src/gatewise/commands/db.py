"""``gatewise db upgrade``: apply the records database's migrations ahead of a deploy.

The gateway also migrates when it starts; running this first (e.g. in a
release job with the production secrets) surfaces a schema problem before
any instance restarts.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gatewise.config.loader import ConfigError, load_config
from gatewise.config.secrets import SecretResolutionError


def upgrade_command(file: Path) -> int:
    """Migrate the database named by ``store.url`` in ``file`` to the newest revision."""
    from gatewise.store.engine import StoreError
    from gatewise.store.urls import redacted, resolve_store_url

    try:
        config = load_config(file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    base_dir = file.resolve().parent
    try:
        shown = redacted(resolve_store_url(config.store.url, base_dir))
        revision = upgrade(config.store.url, base_dir)
    except (SecretResolutionError, StoreError) as exc:
        message = str(exc).removeprefix("store.url: ")
        print(f"{file}: store.url: {message}", file=sys.stderr)
        return 1
    print(f"OK: {shown} is at revision {revision}")
    return 0


def upgrade(url: str, base_dir: Path | None = None) -> str:
    """Migrate the database at ``url`` (a ``store.url`` value) to the newest revision."""
    from gatewise.store.engine import Database
    from gatewise.store.migrations import HEAD
    from gatewise.store.urls import resolve_store_url

    async def run() -> None:
        database = Database(resolve_store_url(url, base_dir))
        await database.start()  # migrates
        await database.close()

    asyncio.run(run())
    return HEAD

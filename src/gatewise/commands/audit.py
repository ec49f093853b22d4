"""``gatewise audit verify``: walk the audit trail's hash chain and say whether it holds.

Exit codes: 0 the chain is intact (one summary line), 1 it is broken (the first broken
entry: its seq, id and what is wrong), 2 the database cannot be read (or is not migrated).
Read-only: it never migrates nor writes.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gatewise.config.loader import ConfigError, load_config
from gatewise.config.secrets import SecretResolutionError

BROKEN = 1
UNREADABLE = 2


def verify_command(config_file: Path | None, store: str | None) -> int:
    """Verify the trail in ``store`` (a store URL) or in the database of ``config_file``."""
    from gatewise.store.urls import redacted, resolve_store_url

    if (config_file is None) == (store is None):
        print("give either --config FILE or --store URL", file=sys.stderr)
        return UNREADABLE
    try:
        if config_file is not None:
            config = load_config(config_file)
            url = resolve_store_url(config.store.url, config_file.resolve().parent)
        else:
            assert store is not None
            url = resolve_store_url(store, Path.cwd())
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return UNREADABLE
    except (SecretResolutionError, ValueError) as exc:
        print(f"store.url: {exc}", file=sys.stderr)
        return UNREADABLE
    return asyncio.run(_verify(url, redacted(url)))


async def _verify(url: str, shown: str) -> int:
    from gatewise.store.audit_chain import verify
    from gatewise.store.engine import Database, StoreError, describe_error
    from gatewise.store.migrations import HEAD, current_revision

    database = Database(url)
    try:
        await database.start(migrate=False)
    except StoreError as exc:
        print(str(exc).removeprefix("store.url: "), file=sys.stderr)
        return UNREADABLE
    try:
        revision = await current_revision(database.engine)
        if revision is None or revision < "0007":
            print(
                f"{shown}: the records database is at revision {revision or 'none'}, before the "
                f"audit chain (0007; newest {HEAD}): run `gatewise db upgrade` first",
                file=sys.stderr,
            )
            return UNREADABLE
        report = await verify(database.engine)
    except Exception as exc:
        print(f"{shown}: cannot read the audit trail: {describe_error(exc)}", file=sys.stderr)
        return UNREADABLE
    finally:
        await database.close()
    if report.broken is not None:
        print(
            f"BROKEN: audit trail in {shown}: {report.broken.describe()} "
            f"({report.entries} entries before it verified)",
            file=sys.stderr,
        )
        return BROKEN
    print(
        f"OK: audit trail intact in {shown}: {report.entries} entries, "
        f"last seq {report.last_seq}, last hash {report.last_hash}"
    )
    return 0

"""``gatewise audit verify``, run as a real command on real databases: exit 0 and a summary
when the chain holds, 1 naming the first broken entry when it was tampered with, 2 when the
database cannot be read."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa

from gatewise.identity.records import Actor
from gatewise.store.engine import Database, make_engine
from gatewise.store.identity import IdentityStore
from gatewise.store.tables import audit_log
from tests.integration.pg import require_postgres

ADMIN = Actor(name="cli:root", request_id="req-cli")


def gatewise(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gatewise", "audit", "verify", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


async def seeded(database: Database) -> None:
    store = IdentityStore(database)
    tenant = await store.create_tenant(ADMIN, name="acme")
    await store.update_tenant(ADMIN, tenant.id, display_name="Acme")
    await store.create_team(ADMIN, tenant_id=tenant.id, name="core")


async def tamper(database: Database, statement: sa.Executable) -> int:
    """Run ``statement``; returns the id the entry with seq 2 had."""
    async with database.engine.begin() as connection:
        row = (
            await connection.execute(sa.select(audit_log.c.id).where(audit_log.c.seq == 2))
        ).one()
        await connection.execute(statement)
    return int(row[0])


def test_verify_a_sqlite_trail_by_config_then_tampered(tmp_path: Path) -> None:
    config = tmp_path / "gatewise.yaml"
    config.write_text("store:\n  url: sqlite+aiosqlite:///records.db\n")
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/records.db")

    async def prepare() -> None:
        await database.start()
        await seeded(database)

    asyncio.run(prepare())
    result = gatewise("--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: audit trail intact in sqlite+aiosqlite:///")
    assert "3 entries, last seq 3" in result.stdout

    async def edit() -> int:
        row_id = await tamper(
            database,
            sa.update(audit_log).where(audit_log.c.seq == 2).values(actor="cli:mallory"),
        )
        await database.close()
        return row_id

    row_id = asyncio.run(edit())
    result = gatewise("--store", f"sqlite+aiosqlite:///{tmp_path}/records.db")
    assert result.returncode == 1
    assert f"seq 2 (id {row_id}): edited: its content does not match its hash" in result.stderr
    assert "1 entries before it verified" in result.stderr
    assert result.stdout == ""


async def _in_postgres(statement: str) -> None:
    engine = make_engine(require_postgres()).execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(sa.text(statement))
    await engine.dispose()


def test_verify_a_postgresql_trail_with_a_deleted_entry() -> None:
    name = f"gw_audit_{uuid.uuid4().hex[:10]}"  # a database of its own: the CLI takes a URL
    url = require_postgres().rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_in_postgres(f'CREATE DATABASE "{name}"'))
    try:

        async def prepare() -> None:
            database = Database(url)
            await database.start()
            await seeded(database)
            await database.close()

        asyncio.run(prepare())
        result = gatewise("--store", url)
        assert result.returncode == 0, result.stderr
        assert "3 entries, last seq 3" in result.stdout

        async def delete() -> None:
            database = Database(url)
            await database.start()
            await tamper(database, sa.delete(audit_log).where(audit_log.c.seq == 2))
            await database.close()

        asyncio.run(delete())
        result = gatewise("--store", url)
        assert result.returncode == 1
        assert "seq 3 (id " in result.stderr and "deleted" in result.stderr
        assert "(seq 2) are missing" in result.stderr
    finally:
        asyncio.run(_in_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_verify_says_what_it_cannot_read(tmp_path: Path) -> None:
    result = gatewise("--store", f"sqlite+aiosqlite:///{tmp_path}/none/records.db")
    assert result.returncode == 2 and "does not exist" in result.stderr
    empty = tmp_path / "empty.db"
    result = gatewise("--store", f"sqlite+aiosqlite:///{empty}")
    assert result.returncode == 2 and "gatewise db upgrade" in result.stderr
    result = gatewise()
    assert result.returncode == 2 and "--config FILE or --store URL" in result.stderr

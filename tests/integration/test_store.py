"""The records store on SQLite (always) and PostgreSQL (at 127.0.0.1:5432/test).

PostgreSQL tests run each in a schema of their own (dropped afterwards), so
reruns and parallel runs do not see each other. They are skipped when the
server is unreachable, unless ``GATEWISE_REQUIRE_SERVICES`` is set: then a
missing PostgreSQL is a failure.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from gatewise.config.models import Config
from gatewise.core.errors import ServiceUnavailableError
from gatewise.store.engine import Database, StoreError
from gatewise.store.migrations import HEAD, SCRIPT_LOCATION, current_revision
from gatewise.store.responses import ResponseRepository, StoredResponse
from gatewise.store.tables import declared, metadata
from gatewise.store.urls import resolve_store_url
from tests.integration.pg import Backend


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    backend = Backend(request.param, tmp_path)
    await backend.setup()
    try:
        yield backend
    finally:
        await backend.teardown()


@pytest.fixture
async def database(backend: Backend) -> AsyncIterator[Database]:
    database = backend.database()
    await database.start()
    try:
        yield database
    finally:
        await database.close()


def stored(response_id: str, owner: str = "alice", previous: str | None = None) -> StoredResponse:
    return StoredResponse(
        id=response_id,
        owner=owner,
        created_at=1_700_000_000,
        model="gpt-4o-mini",
        status="completed",
        request={"model": "gpt-4o-mini", "store": True},
        response={"id": response_id, "object": "response", "usage": {"input_tokens": 3}},
        input_items=[{"id": f"in-{response_id}", "type": "message", "content": "héllo ✓"}],
        output_items=[{"id": f"out-{response_id}", "type": "message", "content": [{"n": 1.5}]}],
        previous_response_id=previous,
    )


# --- migrations ---------------------------------------------------------------------------


def test_head_is_the_newest_script_revision() -> None:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


async def test_migrations_build_exactly_the_declared_tables(database: Database) -> None:
    assert await current_revision(database.engine) == HEAD

    def differences(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"include_name": declared})
        return list(compare_metadata(context, metadata))

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
        indexes = await connection.run_sync(lambda c: sa.inspect(c).get_indexes("responses"))
    assert [(i["name"], i["column_names"]) for i in indexes] == [
        ("ix_responses_owner_id", ["owner", "id"])
    ]


async def test_migrating_again_is_a_no_op(backend: Backend, database: Database) -> None:
    from gatewise.store.migrations import upgrade_engine

    assert await upgrade_engine(database.engine, database.url) is False
    again = backend.database()
    await again.start()
    await again.close()
    assert await current_revision(database.engine) == HEAD


async def test_concurrent_starts_migrate_once(backend: Backend) -> None:
    databases = [backend.database() for _ in range(4)]
    await asyncio.gather(*(d.start() for d in databases))
    try:
        assert await current_revision(databases[0].engine) == HEAD
        repository = ResponseRepository(databases[1])
        await repository.save(stored("resp_1"))
        assert await ResponseRepository(databases[2]).get("alice", "resp_1") is not None
    finally:
        await asyncio.gather(*(d.close() for d in databases))


async def test_user_emails_become_unique_per_tenant_on_a_database_with_rows(
    backend: Backend,
) -> None:
    """Migration 0005 on a database at 0004 that already holds users: every row stays, and
    from then on an email is unique within its tenant (and among tenant-less users) only."""
    from gatewise.store.migrations import _run_alembic, upgrade_engine

    database = backend.database()
    await database.start(migrate=False)
    engine = database.engine
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_alembic, "0004")
            await connection.commit()
        assert await current_revision(engine) == "0004"
        users = sa.table(
            "users", *(sa.column(c) for c in ("id", "tenant_id", "team_id", "email", "role",
                                              "status", "created_at", "updated_at"))
        )  # fmt: skip
        tenants = sa.table(
            "tenants", *(sa.column(c) for c in ("id", "name", "status", "created_at",
                                                "updated_at"))
        )  # fmt: skip
        async with engine.begin() as connection:
            for tenant in ("ten_a", "ten_b"):
                await connection.execute(
                    tenants.insert().values(
                        id=tenant, name=tenant, status="active", created_at=1.0, updated_at=1.0
                    )
                )
            for user, tenant, email in (
                ("usr_1", "ten_a", "ann@example.com"),
                ("usr_2", "ten_b", "bob@example.com"),
                ("usr_3", None, "root@example.com"),
            ):
                await connection.execute(
                    users.insert().values(
                        id=user, tenant_id=tenant, team_id=None, email=email, role="viewer",
                        status="active", created_at=1.0, updated_at=2.0,
                    )
                )  # fmt: skip
            with pytest.raises(sa.exc.IntegrityError):  # the old rule: unique everywhere
                async with connection.begin_nested():
                    await connection.execute(
                        users.insert().values(
                            id="usr_x", tenant_id="ten_b", team_id=None, email="ann@example.com",
                            role="viewer", status="active", created_at=1.0, updated_at=1.0,
                        )
                    )  # fmt: skip

        assert await upgrade_engine(engine, database.url) is True
        assert await current_revision(engine) == HEAD
        async with engine.begin() as connection:
            rows = (await connection.execute(sa.select(users).order_by(users.c.id))).all()
            assert [tuple(row) for row in rows] == [
                ("usr_1", "ten_a", None, "ann@example.com", "viewer", "active", 1.0, 2.0),
                ("usr_2", "ten_b", None, "bob@example.com", "viewer", "active", 1.0, 2.0),
                ("usr_3", None, None, "root@example.com", "viewer", "active", 1.0, 2.0),
            ]
            await connection.execute(  # the same email in another tenant: fine now
                users.insert().values(
                    id="usr_4", tenant_id="ten_b", team_id=None, email="ann@example.com",
                    role="viewer", status="active", created_at=1.0, updated_at=1.0,
                )
            )  # fmt: skip
            with pytest.raises(sa.exc.IntegrityError):  # ...twice in one tenant: not
                async with connection.begin_nested():
                    await connection.execute(
                        users.insert().values(
                            id="usr_5", tenant_id="ten_a", team_id=None, email="ann@example.com",
                            role="viewer", status="active", created_at=1.0, updated_at=1.0,
                        )
                    )  # fmt: skip

        def differences(connection: sa.Connection) -> list[object]:
            context = MigrationContext.configure(connection, opts={"include_name": declared})
            return list(compare_metadata(context, metadata))

        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await database.close()


def test_worker_processes_share_a_new_sqlite_file(tmp_path: Path) -> None:
    """Several processes starting on one fresh file: the lock lets exactly one migrate."""
    url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    code = "import sys; from gatewise.commands.db import upgrade; print(upgrade(sys.argv[1]))"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = [worker.communicate(timeout=60) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], [r[1][-500:] for r in results]
    assert all(r[0].strip() == HEAD.encode() for r in results)


# --- the repository -------------------------------------------------------------------------


async def test_save_get_delete_are_scoped_to_the_owner(database: Database) -> None:
    repository = ResponseRepository(database)
    await repository.save(stored("resp_a"))
    found = await repository.get("alice", "resp_a")
    assert found is not None
    assert found.input_items[0]["content"] == "héllo ✓"
    assert found.output_items == [{"id": "out-resp_a", "type": "message", "content": [{"n": 1.5}]}]
    assert found.to_response() == {
        "id": "resp_a",
        "object": "response",
        "usage": {"input_tokens": 3},
        "output": found.output_items,
    }
    assert await repository.get("bob", "resp_a") is None
    assert await repository.delete("bob", "resp_a") is False
    assert await repository.get("alice", "resp_a") is not None
    assert await repository.delete("alice", "resp_a") is True
    assert await repository.get("alice", "resp_a") is None
    assert await repository.delete("alice", "resp_a") is False


async def test_chain_is_oldest_first_and_stops_at_other_owners(database: Database) -> None:
    repository = ResponseRepository(database)
    await repository.save(stored("resp_1"))
    await repository.save(stored("resp_2", previous="resp_1"))
    await repository.save(stored("resp_3", previous="resp_2"))
    chain = await repository.chain("alice", "resp_3")
    assert [link.id for link in chain] == ["resp_1", "resp_2", "resp_3"]
    assert chain[0].previous_response_id is None
    assert chain[1].input_items == [{"id": "in-resp_2", "type": "message", "content": "héllo ✓"}]
    assert await repository.chain("bob", "resp_3") == []
    # A response linking to someone else's: the chain ends early, visibly.
    await repository.save(stored("resp_b", owner="bob", previous="resp_2"))
    assert [link.previous_response_id for link in await repository.chain("bob", "resp_b")] == [
        "resp_2"
    ]
    await repository.delete("alice", "resp_2")
    broken = await repository.chain("alice", "resp_3")
    assert [(link.id, link.previous_response_id) for link in broken] == [("resp_3", "resp_2")]


async def test_database_failures_become_503s(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/gone.db")
    await database.start()
    async with database.engine.begin() as connection:
        await connection.execute(sa.text("DROP TABLE responses"))
    repository = ResponseRepository(database)
    with pytest.raises(ServiceUnavailableError) as caught:
        await repository.get("alice", "resp_x")
    assert caught.value.status == 503 and caught.value.code == "store_unavailable"
    await database.close()


# --- configuration and start-up ----------------------------------------------------------------


def test_literal_database_passwords_are_rejected() -> None:
    with pytest.raises(ValueError, match="password is a literal value"):
        Config.model_validate({"store": {"url": "postgresql+asyncpg://gw:hunter2@db:5432/gw"}})
    with pytest.raises(ValueError, match="password is a literal value"):
        Config.model_validate({"store": {"url": "postgresql+asyncpg://gw@db/gw?password=hunter2"}})
    with pytest.raises(ValueError, match="unsupported database URL scheme"):
        Config.model_validate({"store": {"url": "mysql://gw@db/gw"}})
    for url in (
        "postgresql+asyncpg://gw:${env:DB_PASSWORD}@db:5432/gw",
        "postgresql+asyncpg://gw:${file:/run/secrets/db}@db:5432/gw",
        "${env:DATABASE_URL}",
        "sqlite+aiosqlite:///data/records.db",
    ):
        assert Config.model_validate({"store": {"url": url}}).store.url == url


def test_secrets_are_filled_in_and_relative_paths_follow_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GW_TEST_DB_PASSWORD", "p@ss/word")
    url = resolve_store_url("postgresql+asyncpg://gw:${env:GW_TEST_DB_PASSWORD}@db/gw", None)
    assert url == "postgresql+asyncpg://gw:p%40ss%2Fword@db/gw"
    assert sa.make_url(url).password == "p@ss/word"
    assert resolve_store_url("sqlite+aiosqlite:///gatewise.db", tmp_path) == (
        f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    )


async def test_unreachable_database_fails_start_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GW_TEST_DB_PASSWORD", "very-secret-pw")
    url = resolve_store_url(
        "postgresql+asyncpg://gw:${env:GW_TEST_DB_PASSWORD}@127.0.0.1:1/gw", None
    )
    with pytest.raises(StoreError) as caught:
        await Database(url).start()
    message = str(caught.value)
    assert "cannot open the records database" in message and "127.0.0.1:1" in message
    assert "very-secret-pw" not in message and "***" in message


def test_missing_sqlite_folder_is_a_clear_error(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/missing/records.db")
    with pytest.raises(StoreError, match="does not exist"):
        asyncio.run(database.start())


def test_db_upgrade_command(tmp_path: Path) -> None:
    config = tmp_path / "gatewise.yaml"
    config.write_text("store:\n  url: sqlite+aiosqlite:///records.db\n")
    command = [sys.executable, "-m", "gatewise", "db", "upgrade", "--config", str(config)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"OK: sqlite+aiosqlite:///{tmp_path}/records.db is at revision {HEAD}" in result.stdout
    assert (tmp_path / "records.db").is_file()  # relative to the config file, not the cwd
    config.write_text("store:\n  url: postgresql+asyncpg://gw:${env:GW_UNSET_PW}@127.0.0.1/gw\n")
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "GW_UNSET_PW is not set" in result.stderr

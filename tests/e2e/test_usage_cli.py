"""`gatewise usage` as a real process over a temporary SQLite store holding usage records."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gatewise.store.engine import Database
from gatewise.store.usage import UsageRecord, UsageRepository

GATEWISE = [sys.executable, "-m", "gatewise"]
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
WINDOW = ["--from", "2027-01-15", "--to", "2027-01-16"]


def gatewise(config: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*GATEWISE, *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert (result.returncode == 0) is ok, (result.stdout, result.stderr)
    return result


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store with tenant acme (id returned) and a few calls of acme and of another tenant."""
    folder = tmp_path_factory.mktemp("usage-cli")
    config = folder / "gatewise.yaml"
    config.write_text("store:\n  url: sqlite+aiosqlite:///records.db\n")
    acme = json.loads(gatewise(config, "tenants", "create", "acme", "--json").stdout)["id"]

    def call(
        n: int, tenant: str, model: str, cost: int | None, at: float = T0, status: int = 200
    ) -> UsageRecord:
        tokens = (1000, 250) if status == 200 else (0, 0)
        return UsageRecord(
            request_id=f"req-{n}", at=at + n, model=model, operation="chat", status=status,
            tenant_id=tenant, key_id=f"key_{n % 2}", prompt_tokens=tokens[0],
            completion_tokens=tokens[1], cost_micros=cost,
        )  # fmt: skip

    async def seed() -> None:
        database = Database(f"sqlite+aiosqlite:///{folder}/records.db")
        await database.start()
        try:
            await UsageRepository(database).insert_many(
                [
                    call(0, acme, "gpt-4o-mini", 2_500_000),
                    call(1, acme, "gpt-4o-mini", 1),
                    call(2, acme, "claude-sonnet", None),
                    call(3, "ten_other", "gpt-4o-mini", 9_000_000),
                    call(4, acme, "gpt-4o-mini", 7, at=T0 - 86400),  # the day before
                    call(5, acme, "gpt-4o-mini", 0, status=429),  # refused by a limit
                ]
            )
        finally:
            await database.close()

    asyncio.run(seed())
    return config, acme


def test_usage_table_by_model(world: tuple[Path, str]) -> None:
    config, _ = world
    result = gatewise(config, "usage", "--group-by", "model", *WINDOW)
    lines = result.stdout.splitlines()
    assert "Usage by model, 2027-01-15 00:00:00Z to 2027-01-16 00:00:00Z" in lines[0]
    header = next(line for line in lines if "requests" in line)
    for column in (
        "group",
        "refused",
        "prompt tokens",
        "completion tokens",
        "total tokens",
        "cost (USD)",
    ):
        assert column in header
    rows = {cells[0]: cells[1:] for cells in table_rows(result.stdout)}
    assert rows == {
        "claude-sonnet": ["1", "0", "1000", "250", "1250", "0.000000", "1"],
        "gpt-4o-mini": ["3", "1", "3000", "750", "3750", "11.500001", "0"],
    }
    by_status = gatewise(config, "usage", "-g", "status", "--status", "4xx", *WINDOW)
    assert {cells[0]: cells[1:3] for cells in table_rows(by_status.stdout)} == {"429": ["0", "1"]}
    bad_status = gatewise(config, "usage", "--status", "teapot", ok=False)
    assert bad_status.stderr.startswith("error: --status: 'teapot' is not admitted, refused")


def test_usage_for_one_tenant_as_json_and_errors(world: tuple[Path, str]) -> None:
    config, acme = world
    by_tenant = json.loads(gatewise(config, "usage", "--tenant", "acme", *WINDOW, "--json").stdout)
    assert by_tenant == [
        {
            "group": acme,
            "requests": 3,
            "refused": 1,
            "prompt_tokens": 3000,
            "completion_tokens": 750,
            "total_tokens": 3750,
            "cost_usd": "2.500001",
            "cost_unknown_requests": 1,
        }
    ]
    wider = ["--from", str(T0 - 86400), "--to", "2027-01-16T00:00:00Z"]
    by_key = json.loads(gatewise(config, "usage", "-g", "key", "--tenant", acme, *wider,
                                 "--json").stdout)  # fmt: skip
    assert [(row["group"], row["requests"], row["refused"]) for row in by_key] == [
        ("key_0", 3, 0),
        ("key_1", 1, 1),
    ]

    bad_from = gatewise(config, "usage", "--from", "last week", ok=False)
    assert bad_from.stderr.startswith("error: --from: 'last week' is neither an ISO-8601 time")
    backwards = gatewise(config, "usage", "--from", "2027-01-02", "--to", "2027-01-01", ok=False)
    assert backwards.stderr == "error: --from: must be before --to\n"
    unknown = gatewise(config, "usage", "--tenant", "initech", ok=False)
    assert unknown.stderr == "error: no tenant named or with id 'initech'\n"
    bad_group = gatewise(config, "usage", "--group-by", "colour", ok=False)
    assert "colour" in bad_group.stderr


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table: cells between the vertical bars."""
    rows = []
    for line in text.splitlines():
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows

"""`gatewise admin|tenants|apps|keys ...` as real processes on a temporary SQLite store."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

GATEWISE = [sys.executable, "-m", "gatewise"]
KEY = re.compile(r"gw-[a-z0-9]{12}_[A-Za-z0-9_-]{43}")


class Cli:
    def __init__(self, config: Path) -> None:
        self.config = config

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*GATEWISE, *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in result.stderr, result.stderr
        if ok:
            assert result.returncode == 0, result.stderr
        else:
            assert result.returncode == 1, (result.stdout, result.stderr)
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    config = tmp_path / "gatewise.yaml"
    config.write_text("store:\n  url: sqlite+aiosqlite:///records.db\n")
    return Cli(config)


def stored_bytes(tmp_path: Path) -> bytes:
    return b"".join(path.read_bytes() for path in tmp_path.glob("records.db*"))


def test_bootstrap_tenants_apps_and_keys(cli: Cli, tmp_path: Path) -> None:
    admin = cli("admin", "create", "--email", "Root@Example.com", "--json")
    record = json.loads(admin.stdout)
    assert record["key"].startswith(record["prefix"] + "_") and "key_hash" not in record
    assert "shown only now" in admin.stderr
    again = cli("admin", "create", "--email", "root@example.com", ok=False)
    assert "a user with email 'root@example.com' already exists" in again.stderr

    cli("tenants", "create", "acme", "--display-name", "Acme", "--models", "gpt-4o*,mock-gpt")
    taken = cli("tenants", "create", "acme", ok=False)
    assert taken.stderr == "error: a tenant named 'acme' already exists\n"
    shown = json.loads(cli("tenants", "show", "acme", "--json").stdout)
    assert shown["allowed_models"] == ["gpt-4o*", "mock-gpt"] and shown["status"] == "active"
    cli("apps", "create", "bot", "--tenant", shown["id"], "--role", "developer")

    created = cli(
        "keys",
        "create",
        "--app",
        "bot",
        "--tenant",
        "acme",
        "--name",
        "prod",
        "--tags",
        "eu,prod",
        "--expires-in",
        "30d",
        "--role",
        "consumer",
    )
    plaintexts = KEY.findall(created.stdout)
    assert len(plaintexts) == 1 and created.stdout.count(plaintexts[0]) == 1
    prod_key = plaintexts[0]
    prefix = prod_key.split("_", 1)[0]
    assert f"({prefix}) for app bot, expires " in created.stdout
    too_strong = cli(
        "keys",
        "create",
        "--app",
        "bot",
        "--tenant",
        "acme",
        "--name",
        "x",
        "--role",
        "tenant_admin",
        ok=False,
    )
    assert "role: a key cannot have more power than its owner (developer)" in too_strong.stderr

    rotated = json.loads(cli("keys", "rotate", prefix, "--grace", "1h", "--json").stdout)
    assert rotated["tags"] == ["eu", "prod"] and rotated["role"] == "consumer"
    new_key = rotated["key"]
    listed = cli("keys", "list", "--tenant", "acme").stdout
    assert prefix in listed and rotated["prefix"] in listed and "eu,prod" in listed
    assert KEY.search(listed) is None and "key_hash" not in listed

    cli("keys", "revoke", rotated["id"])
    revoked_again = cli("keys", "revoke", rotated["id"], ok=False)
    assert f"key '{rotated['id']}' is revoked" in revoked_again.stderr
    remaining = json.loads(cli("keys", "list", "--tenant", "acme", "--app", "bot", "--json").stdout)
    assert [k["prefix"] for k in remaining] == [prefix]  # the old key, in its grace period
    everything = json.loads(cli("keys", "list", "--all", "--json").stdout)
    assert len(everything) == 3 and all("key_hash" not in k for k in everything)

    in_use = cli("tenants", "delete", "acme", ok=False)
    assert "tenant 'acme' still has apps" in in_use.stderr
    data = stored_bytes(tmp_path)
    for plaintext in (record["key"], prod_key, new_key):
        assert plaintext.split("_", 1)[1].encode() not in data


def test_errors_are_one_line(cli: Cli, tmp_path: Path) -> None:
    missing = cli("tenants", "show", "nobody", ok=False)
    assert missing.stderr == "error: no tenant named or with id 'nobody'\n"
    bad_name = cli("tenants", "create", "Not Valid", ok=False)
    assert bad_name.stderr.startswith("error: name: 'Not Valid' is not a valid name")
    bad_duration = cli(
        "keys", "create", "--user", "x@example.com", "--name", "k", "--expires-in", "soon", ok=False
    )
    assert "--expires-in: 'soon' is not a duration" in bad_duration.stderr
    no_user = cli("keys", "create", "--user", "x@example.com", "--name", "k", ok=False)
    assert "--user: no user with email 'x@example.com'" in no_user.stderr
    cli.config.write_text(
        "store:\n  url: postgresql+asyncpg://gw:${env:GW_UNSET_PW}@127.0.0.1/gw\n"
    )
    unset = cli("tenants", "list", ok=False)
    assert "GW_UNSET_PW is not set" in unset.stderr

"""Request records end to end: the official openai SDK calls a real gateway process; every
call leaves a record with its attempts, tokens, cost and guardrail verdict (never the value
the guardrail found), bodies redacted per the tenant's privacy mode. Records past the
queue's bound are spilled to a local file; SIGTERM writes every queued record, and the next
start replays the spilled ones: none lost."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import openai

from gatewise.store.engine import Database
from gatewise.store.records import RecordFilter, RecordsRepository
from tests.e2e.test_cli import GATEWISE, free_port, stop, wait_ready
from tests.identity_seed import one_key, with_store

EMAIL = "jane.doe@example.com"
QUEUE = 100
OVERFLOW = 30


def gateway_config(tmp_path: Path) -> tuple[Path, str, str]:
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, one_key)  # tenant acme
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f'auth: {{mode: keys}}\nstore: {{url: "{store_url}"}}\n'
        "providers:\n  mock: {type: mock}\n"
        "models:\n"
        "  - name: mock-gpt\n"
        "    deployments:\n"
        "      - provider: mock\n"
        "        model: mock-gpt\n"
        '        price: {input_per_million: "1000", output_per_million: "2000"}\n'
        "guardrails:\n"
        "  profiles:\n"
        "    pii: {rules: [{guardrail: pii, 'on': input, action: mask, mask: placeholder}]}\n"
        "  assign: {models: {mock-gpt: pii}}\n"
        "observability:\n"
        "  records:\n"
        f"    queue_size: {QUEUE}\n"
        "    flush_interval_ms: 60000\n"  # nothing written before the stop, but overflow
        "    batch_size: 1000\n"
        f"    spool: {tmp_path}/spill\n"
        "    tenants: {acme: {privacy: redacted}}\n"
    )
    return config, store_url, key


def serve(config: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [*GATEWISE, "serve", "--config", str(config), "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/readyz", process)
    return process, url


def records(store_url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        database = Database(store_url)
        await database.start()
        try:
            repository = RecordsRepository(database)
            page = await repository.page(RecordFilter(), limit=500, offset=0)
            found = []
            for item in page.items:
                one = await repository.get(item["id"])
                assert one is not None
                found.append(one)
            return found
        finally:
            await database.close()

    return asyncio.run(read())


def test_records_survive_overflow_and_sigterm_with_every_field(tmp_path: Path) -> None:
    config, store_url, key = gateway_config(tmp_path)
    process, url = serve(config)
    client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    calls = QUEUE + OVERFLOW
    try:
        for n in range(calls):
            client.chat.completions.create(
                model="mock-gpt",
                messages=[{"role": "user", "content": f"call {n}: write to {EMAIL}"}],
            )
        time.sleep(0.3)  # the overflow reaches its spill file (every 50 ms)
        assert list((tmp_path / "spill").glob("*.spill"))
    finally:
        assert stop(process) == 0  # SIGTERM: the queued records are written
    assert len(records(store_url)) == QUEUE

    process, _ = serve(config)  # replays the spilled records at start
    try:
        deadline = time.monotonic() + 15
        while len(records(store_url)) < calls and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        assert stop(process) == 0
    found = records(store_url)
    assert len(found) == calls
    assert len({row["id"] for row in found}) == calls  # none twice

    row = found[0]
    assert (row["front_door"], row["operation"], row["model"], row["status"]) == (
        "openai",
        "chat",
        "mock-gpt",
        200,
    )
    assert row["tenant_id"] and row["key_id"] and row["app_id"]
    assert row["provider"] == "mock" and row["deployment"]
    assert [attempt["status"] for attempt in row["attempts"]] == [200]
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    assert row["cost_micros"] and row["cost_micros"] > 0
    assert row["user_agent"].startswith("OpenAI/Python")
    assert row["client_ip"] == "127.0.0.1" and row["duration_ms"] > 0
    (verdict,) = row["guardrails"]
    assert (verdict["guardrail"], verdict["category"], verdict["action"]) == (
        "pii",
        "EMAIL",
        "mask",
    )
    assert row["privacy"] == "redacted"
    assert row["request_body"].startswith("user: call ")
    assert "[EMAIL_ADDRESS]" in row["request_body"]
    assert row["response_body"] is not None
    for each in found:  # the value the guardrail found, and the key, appear nowhere
        assert EMAIL not in repr(each) and key not in repr(each)


def test_the_purge_command_removes_what_is_past_retention(tmp_path: Path) -> None:
    config, store_url, _key = gateway_config(tmp_path)
    with open(config, "a") as file:
        file.write("    retention_days: 7\n")
    now = time.time()

    async def seed() -> None:
        from gatewise.store.records import COLUMNS

        database = Database(store_url)
        await database.start()
        try:
            rows = []
            for n, age in enumerate((1, 6, 8, 30)):
                values: dict[str, Any] = dict.fromkeys(COLUMNS)
                values.update(
                    id=f"req_{n}", at=now - age * 86400, front_door="openai", operation="chat",
                    method="POST", path="/v1/chat/completions", stream=False, status=200,
                    duration_ms=1.0, prompt_tokens=0, completion_tokens=0, cached_tokens=0,
                    usage_estimated=False, privacy="off",
                )  # fmt: skip
                rows.append(tuple(values[name] for name in COLUMNS))
            repository = RecordsRepository(database)
            await repository.insert(rows)
            await repository.close()
        finally:
            await database.close()

    asyncio.run(seed())
    done = subprocess.run(
        [*GATEWISE, "records", "purge", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '"rows_deleted": 2' in done.stdout.replace(":2", ": 2")
    assert sorted(row["id"] for row in records(store_url)) == ["req_0", "req_1"]

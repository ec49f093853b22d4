"""The audit trail of a real ``gatewise serve``: a call a guardrail blocks (made with the
openai SDK) leaves a ``guardrail_block`` entry naming the guardrail, caller, tenant and
request id, never the blocked text; the worker's config load is audited; every entry goes
to an HTTP sink with its chain hash; ``gatewise audit verify`` finds the chain intact."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
import sqlalchemy as sa

from gatewise.store.identity import IdentityStore
from gatewise.store.tables import audit_log
from gatewise.testing import FakeOpenAIUpstream, run_in_thread
from gatewise.testing.webhook_receiver import WebhookReceiver
from tests.conftest import openai_provider
from tests.e2e.gateways import serve_gateways
from tests.e2e.guardrail_support import EMAIL, UPSTREAM_MODEL, rule
from tests.e2e.test_cli import GATEWISE
from tests.identity_seed import ACTOR, with_store

SIEM_TOKEN = "Bearer siem-0123456789abcdef"


async def seed(store: IdentityStore) -> tuple[str, str, str]:
    tenant = await store.create_tenant(ACTOR, name="acme")
    app = await store.create_app(ACTOR, tenant_id=tenant.id, name="app")
    record, key = await store.create_key(ACTOR, name="k", app_id=app.id)
    return tenant.id, record.id, key


async def all_entries(store: IdentityStore) -> list[dict[str, Any]]:
    async with store.database.engine.connect() as connection:
        rows = await connection.execute(sa.select(audit_log).order_by(audit_log.c.seq))
        return [dict(row._mapping) for row in rows]


def test_a_blocked_call_is_audited_without_its_text(
    tmp_path: Path, upstream: FakeOpenAIUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    tenant_id, key_id, key = with_store(store_url, seed)
    monkeypatch.setenv("GW_TEST_SIEM_TOKEN", SIEM_TOKEN)
    monkeypatch.setenv("GW_TEST_UPSTREAM_KEY", "sk-upstream-secret-0123456789abcdef")
    with run_in_thread(WebhookReceiver()) as receiver:
        config = {
            "auth": {"mode": "keys"},
            "store": {"url": store_url},
            "providers": {"up": openai_provider(upstream.url)},
            "models": [
                {
                    "name": UPSTREAM_MODEL,
                    "deployments": [{"provider": "up", "model": UPSTREAM_MODEL}],
                }
            ],
            "guardrails": {
                "default": "no-pii",
                "profiles": {"no-pii": {"rules": [rule("pii", on="input", action="block")]}},
            },
            "observability": {
                "audit": {
                    "sinks": [
                        {
                            "type": "http",
                            "url": receiver.url,
                            "headers": {"authorization": "${env:GW_TEST_SIEM_TOKEN}"},
                        }
                    ]
                }
            },
        }
        path = tmp_path / "gatewise.yaml"
        path.write_bytes(orjson.dumps(config))  # JSON is YAML
        prompt = f"Please forward this to {EMAIL} today."
        with serve_gateways(path, 1) as served:
            client = openai.OpenAI(base_url=served.urls[0] + "/v1", api_key=key, max_retries=0)
            with pytest.raises(openai.BadRequestError) as caught:
                client.chat.completions.create(
                    model=UPSTREAM_MODEL, messages=[{"role": "user", "content": prompt}]
                )
            request_id = caught.value.response.headers["x-request-id"]
            assert upstream.request_count == 0
            deliveries = receiver_wait(receiver, "guardrail_block")
        sent = [entry for delivery in deliveries for entry in delivery.json]
        log = served.logs[0].read_text()

    entries = with_store(store_url, all_entries)
    blocks = [e for e in entries if e["action"] == "guardrail_block"]
    assert len(blocks) == 1
    block = blocks[0]
    assert block["object_type"] == "guardrail" and block["object_id"] == "pii"
    assert (block["actor"], block["tenant_id"], block["actor_tenant_id"]) == (
        f"key:{key_id}",
        tenant_id,
        tenant_id,
    )
    assert block["request_id"] == request_id
    assert block["after"]["category"] == "EMAIL" and block["after"]["direction"] == "input"
    loads = [e for e in entries if e["action"] == "config_load"]
    assert len(loads) == 1 and loads[0]["after"]["source"] == str(tmp_path)

    # The blocked text, the key and the SIEM token are nowhere: not in the database, not
    # in what the sink received, not in the gateway's log.
    everything = repr(entries) + orjson.dumps(sent).decode() + log
    for secret in (EMAIL, "forward this", key, SIEM_TOKEN):
        assert secret not in everything

    exported = {e["seq"]: e for e in sent}
    assert exported[block["seq"]]["hash"] == block["hash"]
    assert {"config_load", "guardrail_block"} <= {e["action"] for e in sent}
    assert all(d.headers["authorization"] == SIEM_TOKEN for d in deliveries)

    result = subprocess.run(
        [*GATEWISE, "audit", "verify", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(entries)} entries" in result.stdout


def receiver_wait(receiver: WebhookReceiver, action: str, timeout: float = 15) -> list[Any]:
    """The deliveries so far, once one holds an entry of ``action``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deliveries = list(receiver.accepted)
        if any(e["action"] == action for d in deliveries for e in d.json):
            return deliveries
        time.sleep(0.05)
    raise AssertionError(f"no {action} entry reached the sink in {timeout} s")

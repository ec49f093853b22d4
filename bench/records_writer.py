"""How many request records a second the writer puts into PostgreSQL.

Raw records are built by the real observer from a finished request context (two
attempts, a guardrail verdict, decisions, usage), submitted to a ``RecordsWriter``
over a ``RecordsRepository`` (COPY into day partitions), and timed from the first
submit until the last row is in. The queue is sized to hold every record, so this
measures the writer's drain rate (prepare in its thread, then COPY), not the
submit rate. Also reports the hot path's cost: ``finished`` + ``submit`` per record.

    .venv/bin/python bench/records_writer.py [--records 200000] [--url postgresql+asyncpg://...]

Runs in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import sqlalchemy as sa

from gatewise.core.context import Attempt, GuardrailVerdict, RequestContext
from gatewise.core.types import Usage
from gatewise.observe.records import RequestRecords, prepare
from gatewise.store.engine import Database, make_engine
from gatewise.store.records import RecordsRepository
from gatewise.store.records_writer import RecordsWriter

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


class Caller:
    name, owner = "key:k", "app:a"
    tenant_id, team_id, app_id, user_id, key_id = "ten_1", "team_1", "app_1", None, "key_1"


def context(n: int) -> RequestContext:
    ctx = RequestContext(f"req_{n:012d}", "POST", "/v1/chat/completions", operation="chat")
    ctx.model = "gpt-4o-mini"
    ctx.principal = Caller()
    ctx.headers = {b"user-agent": b"OpenAI/Python 1.54.0"}
    ctx.client_ip = "10.1.2.3"
    ctx.attempts = [
        Attempt("up", "gpt-4o-mini", 503, "upstream_error", 3.0, 4.0, "dep-a"),
        Attempt("up2", "gpt-4o-mini", 200, None, 40.0, 90.0, "dep-b"),
    ]
    ctx.usage = Usage(120, 40, 160)
    ctx.cost_micros = 42
    ctx.guardrails = [
        GuardrailVerdict("pii", "EMAIL", 0.9, "mask", "input", 0, ((3, 20, "EMAIL"),))
    ]
    ctx.decisions = ["failover:dep-a:503"]
    return ctx


async def main(url: str, count: int) -> None:
    schema = f"gw_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    async with admin.begin() as connection:
        await connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    database = Database(url, connect_args={"server_settings": {"search_path": schema}})
    await database.start()
    try:
        repository = RecordsRepository(database)
        writer = RecordsWriter(
            repository, prepare, max_queue=count, batch_size=5_000, flush_interval=0.05
        )
        observer = RequestRecords(writer)
        contexts = [context(n) for n in range(count)]
        writer.start()
        await asyncio.sleep(0)
        started = time.perf_counter()
        cpu = time.process_time()
        for ctx in contexts:
            observer.finished(ctx)
        hot = time.process_time() - cpu
        while writer.written < count:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        await writer.close()
        async with database.engine.connect() as connection:
            rows = (
                await connection.execute(sa.text("SELECT count(*) FROM request_records"))
            ).scalar_one()
        assert rows == count, rows
        print(f"records:             {count:,}")
        print(f"written in:          {elapsed:.2f} s")
        print(f"throughput:          {count / elapsed:,.0f} records/s into PostgreSQL")
        print(f"hot path per record: {hot / count * 1e6:.2f} µs CPU (finished + submit)")
        await repository.close()
    finally:
        await database.close()
        async with admin.begin() as connection:
            await connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--url", default=DEFAULT_URL)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.url, arguments.records))

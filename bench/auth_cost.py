"""CPU cost of authenticating one request on the hot path (issue 4's 0.03 ms budget).

Builds the in-memory directory from a synthetic snapshot of N keys (default
10,000), then times ``Authenticator.authenticate`` for a valid key taken at
random, an unknown key and a malformed key. Run: ``.venv/bin/python
bench/auth_cost.py [--keys N] [--calls N]``. The end-to-end figure comes
from ``bench/run.py --auth keys`` vs ``--auth open``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time

from gatewise.core.errors import AuthenticationError
from gatewise.identity.cache import IdentityCache
from gatewise.identity.keys import display_prefix, generate_key, hash_key
from gatewise.identity.records import ApiKey, App, Snapshot, Status, Tenant
from gatewise.identity.roles import Role
from gatewise.policies.auth import Authenticator


class StaticSource:
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    async def version(self) -> int:
        return self._snapshot.version

    async def snapshot(self) -> Snapshot:
        return self._snapshot


def synthetic_snapshot(count: int) -> tuple[Snapshot, list[str]]:
    tenant = Tenant("ten_1", "bench", None, None, Status.ACTIVE, 0.0, 0.0)
    app = App("app_1", "ten_1", None, "bench", Role.CONSUMER, ["gpt-*"], Status.ACTIVE, 0.0, 0.0)
    keys, plaintexts = [], []
    for index in range(count):
        kid, key = generate_key()
        plaintexts.append(key)
        keys.append(
            ApiKey(
                id=f"key_{kid}",
                kid=kid,
                prefix=display_prefix(kid),
                key_hash=hash_key(key).hex(),
                tenant_id="ten_1",
                app_id="app_1",
                user_id=None,
                name=f"k{index}",
                role=None,
                allowed_models=None,
                expires_at=time.time() + 3600 if index % 2 else None,
            )
        )
    return Snapshot(1, [tenant], [], [app], [], keys, []), plaintexts


async def measure(keys: int, calls: int) -> None:
    snapshot, plaintexts = synthetic_snapshot(keys)
    cache = IdentityCache(StaticSource(snapshot), poll_seconds=3600)
    started = time.perf_counter()
    await cache.start()
    load_ms = (time.perf_counter() - started) * 1000
    auth = Authenticator(cache, None)
    chosen = [
        {b"authorization": b"Bearer " + random.choice(plaintexts).encode()} for _ in range(1000)
    ]
    unknown = {b"authorization": b"Bearer " + generate_key()[1].encode()}
    for headers in chosen:  # warm up
        await auth.authenticate(headers)
    start = time.process_time()
    for index in range(calls):
        await auth.authenticate(chosen[index % 1000])
    valid_us = (time.process_time() - start) / calls * 1e6
    start = time.process_time()
    for _ in range(calls):
        with contextlib.suppress(AuthenticationError):
            await auth.authenticate(unknown)
    unknown_us = (time.process_time() - start) / calls * 1e6
    await cache.close()
    print(f"directory of {keys:,} keys built in {load_ms:.0f} ms")
    print(f"valid key:   {valid_us:.2f} us CPU per authentication ({calls:,} calls)")
    print(f"unknown key: {unknown_us:.2f} us CPU per rejection")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    asyncio.run(measure(args.keys, args.calls))


if __name__ == "__main__":
    main()

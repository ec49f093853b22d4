"""The benchmark's caller: a real gateway key, so authentication is on the measured path.

``--auth keys`` (the default) creates a tenant, an app and a key in the
gateway's records database before the gateway starts, and every request
(wrk, the stream client, the readiness probe) sends it as a Bearer token —
the direct upstream gets the same header, so both sides parse the same bytes.
``--auth open`` runs without keys, to measure what authentication costs.
"""

from __future__ import annotations

import asyncio
import os

#: wrk's Lua script and the Python clients read the Authorization value from here.
AUTH_ENV = "BENCH_AUTHORIZATION"


def auth_headers() -> dict[str, str]:
    value = os.environ.get(AUTH_ENV)
    return {"Authorization": value} if value else {}


def auth_header_lines() -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in auth_headers().items())


def create_bench_key(store_url: str) -> str:
    """A consumer key of app ``bench`` in tenant ``bench``; returns the plaintext key."""

    async def create() -> str:
        from gatewise.identity.records import Actor
        from gatewise.store.engine import Database
        from gatewise.store.identity import IdentityStore

        database = Database(store_url)
        await database.start()
        try:
            store = IdentityStore(database)
            actor = Actor(name="bench")
            tenant = await store.create_tenant(actor, name="bench")
            app = await store.create_app(actor, tenant_id=tenant.id, name="bench")
            _, key = await store.create_key(actor, name="bench", app_id=app.id)
            return key
        finally:
            await database.close()

    return asyncio.run(create())

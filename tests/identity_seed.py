"""Seeding and changing identity records from a test's thread, in the gateway's own store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from gatewise.identity.records import Actor
from gatewise.store.engine import Database
from gatewise.store.identity import IdentityStore

T = TypeVar("T")
ACTOR = Actor(name="test:seed")


def with_store(url: str, action: Callable[[IdentityStore], Awaitable[T]]) -> T:
    """Run ``action`` against the records at ``url`` on a loop of its own (migrating first)."""

    async def run() -> T:
        database = Database(url)
        await database.start()
        try:
            return await action(IdentityStore(database))
        finally:
            await database.close()

    return asyncio.run(run())


async def one_key(store: IdentityStore) -> str:
    """Tenant ``acme``, its app ``a`` and a consumer key of it; returns the plaintext key."""
    tenant = await store.create_tenant(ACTOR, name="acme")
    app = await store.create_app(ACTOR, tenant_id=tenant.id, name="a")
    _, key = await store.create_key(ACTOR, name="k", app_id=app.id)
    return key

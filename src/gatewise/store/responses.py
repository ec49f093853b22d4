"""The repository of stored responses (the Responses API's server-side state).

Every read and write is scoped to an ``owner``: another owner's response is
simply not found, so callers cannot even learn that an id exists. Database
failures become a 503 ``GatewayError`` (and are logged without secrets), so
front doors answer them in their own envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from gatewise.core.errors import ServiceUnavailableError
from gatewise.core.types import JSONObject
from gatewise.store.engine import Database
from gatewise.store.tables import responses

log = logging.getLogger("gatewise.store")
T = TypeVar("T")

#: The longest ``previous_response_id`` chain followed (guards against runaway recursion).
MAX_CHAIN = 1000


@dataclass(slots=True)
class StoredResponse:
    """One stored response: the Response (minus output), its request, and its items."""

    id: str
    owner: str
    created_at: int
    model: str
    status: str
    request: JSONObject
    response: JSONObject
    input_items: list[JSONObject] = field(default_factory=list)
    output_items: list[JSONObject] = field(default_factory=list)
    previous_response_id: str | None = None

    def to_response(self) -> JSONObject:
        """The Response object as the API returns it."""
        return {**self.response, "output": self.output_items}


@dataclass(slots=True)
class ChainLink:
    """One response of a conversation chain: what it contributes to the context."""

    id: str
    previous_response_id: str | None
    input_items: list[JSONObject]
    output_items: list[JSONObject]


class ResponseRepository:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def save(self, stored: StoredResponse) -> None:
        """One insert per response."""
        values = {
            "id": stored.id,
            "owner": stored.owner,
            "created_at": stored.created_at,
            "model": stored.model,
            "status": stored.status,
            "previous_response_id": stored.previous_response_id,
            "request": stored.request,
            "response": stored.response,
            "input_items": stored.input_items,
            "output_items": stored.output_items,
        }

        async def insert() -> None:
            async with self.database.engine.begin() as connection:
                await connection.execute(responses.insert(), values)

        await self._guard(insert)

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        statement = sa.select(responses).where(
            responses.c.id == response_id, responses.c.owner == owner
        )

        async def select() -> StoredResponse | None:
            async with self.database.engine.connect() as connection:
                row = (await connection.execute(statement)).mappings().first()
            return StoredResponse(**row) if row is not None else None

        return await self._guard(select)

    async def delete(self, owner: str, response_id: str) -> bool:
        statement = sa.delete(responses).where(
            responses.c.id == response_id, responses.c.owner == owner
        )

        async def delete() -> bool:
            async with self.database.engine.begin() as connection:
                result = await connection.execute(statement)
            return bool(result.rowcount)

        return await self._guard(delete)

    async def chain(self, owner: str, response_id: str) -> list[ChainLink]:
        """The conversation ending at ``response_id``, oldest first, in one round trip.

        Empty when ``response_id`` is not the owner's. The chain stops early where
        a link was deleted: the first link's ``previous_response_id`` is then not None.
        """
        r = responses
        walk = (
            sa.select(r.c.id, r.c.previous_response_id, sa.literal(0).label("depth"))
            .where(r.c.id == response_id, r.c.owner == owner)
            .cte("walk", recursive=True)
        )
        walk = walk.union_all(
            sa.select(r.c.id, r.c.previous_response_id, (walk.c.depth + 1).label("depth")).where(
                r.c.id == walk.c.previous_response_id,
                r.c.owner == owner,
                walk.c.depth < MAX_CHAIN,
            )
        )
        statement = (
            sa.select(r.c.id, r.c.previous_response_id, r.c.input_items, r.c.output_items)
            .join(walk, r.c.id == walk.c.id)
            .order_by(walk.c.depth.desc())
        )

        async def select() -> list[ChainLink]:
            async with self.database.engine.connect() as connection:
                rows = (await connection.execute(statement)).all()
            return [ChainLink(row[0], row[1], row[2], row[3]) for row in rows]

        return await self._guard(select)

    async def _guard(self, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            return await operation()
        except (SQLAlchemyError, OSError) as exc:
            log.error(
                "records database error: %s",
                type(getattr(exc, "orig", None) or exc).__name__,
                extra={"database": self.database.shown_url},
            )
            raise ServiceUnavailableError(
                "The response store is unavailable; try again later.", code="store_unavailable"
            ) from None

"""What every part of the identity store shares: errors, pages, validation, rows, transactions.

A mutation runs in ``IdentityBase._write``: its first statement bumps the
identity version, which takes the write lock at once (the version row's lock on
PostgreSQL, the database's on SQLite). Identity writes are rare, so serialising
them costs nothing and makes the name checks that follow race-free; it also
avoids SQLite's read-then-write deadlock between two concurrent transactions.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewise.identity.keys import display_prefix
from gatewise.identity.records import (
    Actor,
    ApiKey,
    App,
    Status,
    Subscription,
    SubscriptionStatus,
    Team,
    Tenant,
    User,
)
from gatewise.identity.roles import Role
from gatewise.store import audit_chain
from gatewise.store.engine import Database
from gatewise.store.tables import identity_version

T = TypeVar("T")
MAX_PAGE = 1000
#: The largest list offset: far past any real list, far below any integer column's limit.
MAX_OFFSET = 1_000_000_000
#: The latest time accepted anywhere (9999-12-31T23:59:59Z, as far as calendars go here).
MAX_EPOCH = 253_402_300_799.0
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_ROLES = {role.value: role for role in Role}
_STATUSES = {status.value: status for status in Status}
_SUB_STATUSES = {status.value: status for status in SubscriptionStatus}


class IdentityError(Exception):
    """Base of the store's caller-facing errors; ``field`` names the input at fault, if any."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(IdentityError):
    """The object (or a parent named by a field) does not exist."""


class Conflict(IdentityError):
    """A unique name is taken, a state transition is impossible, or dependents remain."""


class Invalid(IdentityError):
    """A value is not acceptable (the message names the field)."""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# --- values -----------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return prefix + os.urandom(8).hex()


def now() -> float:
    return time.time()


def check_name(value: object, field: str = "name") -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise Invalid(
            f"{field}: {value!r} is not a valid name (1-63 characters: lowercase letters, "
            "digits, '.', '_' or '-', starting with a letter or digit)",
            field=field,
        )
    return value


def check_email(value: object, field: str = "email") -> str:
    if not isinstance(value, str) or "@" not in value.strip() or len(value.strip()) > 320:
        raise Invalid(f"{field}: {value!r} is not an email address", field=field)
    return value.strip().lower()


def check_strings(value: object, field: str, *, limit: int = 256) -> list[str]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, str) and 0 < len(item.strip()) <= limit for item in value
    ):
        raise Invalid(f"{field}: must be a list of non-empty strings", field=field)
    return list(dict.fromkeys(item.strip() for item in value))


def check_models(value: object, field: str = "allowed_models") -> list[str] | None:
    """A list of model names or globs, or None for "no restriction at this level"."""
    return None if value is None else check_strings(value, field)


def check_text(value: object, field: str, *, limit: int, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Invalid(
            f"{field}: must be a non-empty string of at most {limit} characters", field=field
        )
    return value


def check_role(value: object, field: str = "role") -> Role:
    role = _ROLES.get(value) if isinstance(value, str) else None
    if role is None:
        raise Invalid(f"{field}: {value!r} is not one of {', '.join(_ROLES)}", field=field)
    return role


def check_status(value: object, field: str = "status") -> Status:
    status = _STATUSES.get(value) if isinstance(value, str) else None
    if status is None:
        raise Invalid(f"{field}: {value!r} is not one of {', '.join(_STATUSES)}", field=field)
    return status


def check_time(value: object, field: str) -> float | None:
    """Epoch seconds between 0 and ``MAX_EPOCH`` (never NaN or infinite), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{field}: must be epoch seconds (a number)", field=field)
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_EPOCH:
        raise Invalid(f"{field}: must be epoch seconds between 0 and {MAX_EPOCH:.0f}", field=field)
    return seconds


def check_changes(changes: dict[str, object], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise Invalid(
            f"{unknown[0]}: a {what}'s {unknown[0]} cannot be changed "
            f"(changeable: {', '.join(allowed)})",
            field=unknown[0],
        )


# --- rows -> records ---------------------------------------------------------------------------


def tenant_of(row: Sequence[Any]) -> Tenant:
    return Tenant(row[0], row[1], row[2], row[3], _STATUSES[row[4]], row[5], row[6])


def team_of(row: Sequence[Any]) -> Team:
    return Team(row[0], row[1], row[2], row[3], row[4], row[5])


def app_of(row: Sequence[Any]) -> App:
    return App(
        row[0], row[1], row[2], row[3], _ROLES[row[4]], row[5], _STATUSES[row[6]], row[7], row[8]
    )


def user_of(row: Sequence[Any]) -> User:
    return User(row[0], row[1], row[2], row[3], _ROLES[row[4]], _STATUSES[row[5]], row[6], row[7])


def key_of(row: Sequence[Any]) -> ApiKey:
    """A key from the api_keys columns in table order (prefix is derived from kid)."""
    role = row[7]
    return ApiKey(
        row[0],
        row[1],
        display_prefix(row[1]),
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        _ROLES[role] if role is not None else None,
        row[8],
        row[9] if row[9] is not None else [],
        row[10],
        row[11],
        row[12],
        row[13],
    )


def subscription_of(row: Sequence[Any]) -> Subscription:
    return Subscription(row[0], row[1], row[2], row[3], _SUB_STATUSES[row[4]], *row[5:11])


def audit_dict(record: object) -> dict[str, object]:
    """A record as the audit table holds it: plain JSON values, never a key's hash."""
    result: dict[str, object] = {}
    for item in fields(record):  # type: ignore[arg-type]
        if item.name == "key_hash":
            continue
        value = getattr(record, item.name)
        result[item.name] = value.value if isinstance(value, Enum) else value
    return result


# --- transactions -------------------------------------------------------------------------------


class Tx:
    """One mutation's transaction: its connection, its actor, and the audit writer."""

    def __init__(self, connection: AsyncConnection, actor: Actor) -> None:
        self.connection = connection
        self.actor = actor
        self.at = now()
        #: The audit entries this transaction appended (told to the sinks once committed).
        self.audited: list[audit_chain.Entry] = []

    async def execute(self, statement: sa.Executable) -> sa.CursorResult[Any]:
        return await self.connection.execute(statement)

    async def row(
        self, table: sa.Table, object_id: str, what: str, field: str | None = None
    ) -> Any:
        """The row with this id, or NotFound (naming ``field`` when the id came from one)."""
        result = await self.connection.execute(sa.select(table).where(table.c.id == object_id))
        row = result.first()
        if row is None:
            prefix = f"{field}: " if field else ""
            raise NotFound(f"{prefix}{what} {object_id!r} not found", field=field)
        return row

    async def update(self, table: sa.Table, object_id: str, values: dict[str, object]) -> Any:
        """Apply ``values`` (and updated_at) to one row; return the row as it now is."""
        await self.connection.execute(
            sa.update(table).where(table.c.id == object_id).values(**values, updated_at=self.at)
        )
        return await self.row(table, object_id, table.name)

    async def exists(self, statement: sa.Select[Any]) -> bool:
        return (await self.connection.execute(statement.limit(1))).first() is not None

    async def audit(
        self,
        action: str,
        object_type: str,
        object_id: str,
        tenant_id: str | None,
        before: object | None,
        after: object | None,
    ) -> None:
        entry = {
            "at": self.at,
            "actor": self.actor.name,
            "actor_tenant_id": self.actor.tenant_id,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "tenant_id": tenant_id,
            "before": audit_dict(before) if before is not None else None,
            "after": audit_dict(after) if after is not None else None,
            "request_id": self.actor.request_id,
        }
        self.audited += await audit_chain.append(self.connection, [entry])


class IdentityBase:
    """The database handle and the read/write/page helpers the store's parts build on."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @contextlib.asynccontextmanager
    async def _write(self, actor: Actor) -> AsyncIterator[Tx]:
        try:
            async with self.database.engine.begin() as connection:
                await connection.execute(
                    identity_version.update()
                    .where(identity_version.c.id == 1)
                    .values(version=identity_version.c.version + 1)
                )
                tx = Tx(connection, actor)
                yield tx
        except IntegrityError as exc:
            # Name checks run first under the write lock; this is the backstop.
            raise Conflict(
                "the change conflicts with an existing record (a name or id already in use)"
            ) from exc
        audit_chain.published(self.database, tx.audited)

    async def _one(
        self, table: sa.Table, object_id: str, what: str, convert: Callable[[Any], T]
    ) -> T:
        async with self.database.engine.connect() as connection:
            result = await connection.execute(sa.select(table).where(table.c.id == object_id))
            row = result.first()
        if row is None:
            raise NotFound(f"{what} {object_id!r} not found")
        return convert(row)

    async def _page(
        self,
        table: sa.Table,
        where: list[sa.ColumnElement[bool]],
        convert: Callable[[Any], T],
        limit: int,
        offset: int,
        order_by: Sequence[sa.ColumnElement[Any]] | None = None,
    ) -> Page[T]:
        check_page(limit, offset)
        order = order_by if order_by is not None else (table.c.created_at, table.c.id)
        count = sa.select(sa.func.count()).select_from(table).where(*where)
        select = sa.select(table).where(*where).order_by(*order).limit(limit).offset(offset)
        async with self.database.engine.connect() as connection:
            total = (await connection.execute(count)).scalar_one()
            rows = (await connection.execute(select)).all()
        return Page([convert(row) for row in rows], int(total), limit, offset)


def equal_to(table: sa.Table, **values: object) -> list[sa.ColumnElement[bool]]:
    """``column == value`` for each list filter that was given (None: not filtered)."""
    return [table.c[name] == value for name, value in values.items() if value is not None]


def check_page(limit: int, offset: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit: must be between 1 and {MAX_PAGE}", field="limit")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise Invalid(f"offset: must be between 0 and {MAX_OFFSET}", field="offset")


def row_values(table: sa.Table, record: object) -> dict[str, object]:
    """A record's values for an insert into ``table`` (enums as their strings)."""
    values: dict[str, object] = {}
    for column in table.columns:
        value = getattr(record, column.name)
        values[column.name] = value.value if isinstance(value, Enum) else value
    return values

"""The audit trail's hash chain: appending entries, and verifying that none was touched.

Every ``audit_log`` row carries ``seq`` (1, 2, 3 ... without gaps), ``prev_hash`` (the
previous entry's ``hash``; ``GENESIS`` for the first) and ``hash`` =
SHA-256(``prev_hash`` || ``canonical(entry)``), where ``canonical`` is orjson with sorted
keys over the stored fields (``CHAINED``). Editing an entry breaks its own hash; deleting
one leaves a gap in ``seq`` and a broken link; moving one breaks the links around it.

Appending is atomic with several writers (worker processes, replicas, the CLI): the first
statement of the transaction bumps the one-row ``audit_head``, which takes its row lock on
PostgreSQL and the database's write lock on SQLite, so the last hash read under it is still
the last when the new entries are inserted and the head moves on in the same commit.

What the chain cannot prove alone: someone able to write the database can rewrite the
whole chain from the edited entry onward. The export sinks (``observe/audit_sinks.py``)
send every entry with its hash to a system out of that person's reach, where the copy can
be compared with the database's.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gatewise.store.tables import audit_head, audit_log

#: The ``prev_hash`` of the first entry.
GENESIS = "0" * 64
#: The stored fields the hash covers (``id`` and the chain's own columns are not among them:
#: an entry's place is fixed by ``prev_hash``, and ``seq`` is checked against it).
CHAINED = (
    "at",
    "actor",
    "actor_tenant_id",
    "action",
    "object_type",
    "object_id",
    "tenant_id",
    "before",
    "after",
    "request_id",
)
_JSON_FIELDS = ("before", "after")
_PAGE = 1000
_INT_MIN, _UINT_END = -(2.0**63), 2.0**64  # the integers orjson reads as ints

Entry = dict[str, Any]
Listener = Callable[[Sequence[Entry]], None]
_listeners: weakref.WeakKeyDictionary[object, Listener] = weakref.WeakKeyDictionary()


def _plain(value: Any) -> Any:
    """A JSON document as the database gives it back: PostgreSQL's JSONB writes ``1.0`` as
    ``1`` and ``1e20`` in full, and orjson reads digits back as an int when it fits 64 bits,
    so whole floats in that range become ints on both sides of the hash."""
    if isinstance(value, float) and value.is_integer() and _INT_MIN <= value < _UINT_END:
        return int(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash covers: its ``CHAINED`` fields, sorted, as compact JSON."""
    shown: dict[str, Any] = {name: entry.get(name) for name in CHAINED}
    shown["at"] = float(shown["at"])
    for name in _JSON_FIELDS:
        shown[name] = _plain(shown[name])
    return orjson.dumps(shown, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """SHA-256 over the previous hash, a newline, and the entry's canonical bytes."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical(entry)).hexdigest()


def _stored(values: Mapping[str, Any]) -> Entry:
    """An entry's values as they are stored and hashed (JSON documents made plain)."""
    row: Entry = {name: values.get(name) for name in CHAINED}
    row["at"] = float(row["at"])
    for name in _JSON_FIELDS:
        if row[name] is not None:
            row[name] = _plain(row[name])
    return row


async def append(connection: AsyncConnection, entries: Sequence[Mapping[str, Any]]) -> list[Entry]:
    """Chain and insert ``entries`` (dicts of the ``CHAINED`` fields) in the caller's
    transaction; returns them with ``seq``, ``prev_hash`` and ``hash``. The head's lock is
    held until that transaction ends: keep it short."""
    if not entries:
        return []
    count = len(entries)
    bump = (
        sa.update(audit_head)
        .where(audit_head.c.id == 1)
        .values(seq=audit_head.c.seq + count)
        .returning(audit_head.c.seq, audit_head.c.hash)
    )
    found = (await connection.execute(bump)).first()
    if found is None:
        raise RuntimeError("the audit chain has no head row: run the migrations (gatewise db)")
    seq, prev = int(found[0]) - count, str(found[1])
    rows: list[Entry] = []
    for values in entries:
        seq += 1
        row = _stored(values)
        row["seq"], row["prev_hash"] = seq, prev
        prev = row["hash"] = chain_hash(prev, row)
        rows.append(row)
    await connection.execute(audit_log.insert(), rows)
    await connection.execute(sa.update(audit_head).where(audit_head.c.id == 1).values(hash=prev))
    return rows


# --- telling the export sinks -----------------------------------------------------------------


def listen(owner: object, listener: Listener | None) -> None:
    """Have ``listener`` told of the entries appended through ``owner`` (a ``Database``) once
    they are committed; None stops it. The listener must not block (it queues)."""
    if listener is None:
        _listeners.pop(owner, None)
    else:
        _listeners[owner] = listener


def published(owner: object, entries: Sequence[Entry]) -> None:
    """Committed entries, for the listener of ``owner`` (if any)."""
    listener = _listeners.get(owner)
    if listener is not None and entries:
        listener(entries)


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Break:
    """The first entry where the chain does not hold: ``problem`` says how."""

    seq: int
    id: int | None
    kind: str  # edited | deleted | reordered | inserted
    problem: str

    def describe(self) -> str:
        where = f"seq {self.seq}" + (f" (id {self.id})" if self.id is not None else "")
        return f"{where}: {self.kind}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Report:
    entries: int
    last_seq: int
    last_hash: str
    broken: Break | None = None

    @property
    def intact(self) -> bool:
        return self.broken is None


_COLUMNS = (
    audit_log.c.id,
    audit_log.c.seq,
    audit_log.c.prev_hash,
    audit_log.c.hash,
    *(audit_log.c[name] for name in CHAINED),
)


async def verify(engine: AsyncEngine, *, page: int = _PAGE) -> Report:
    """Walk the chain in ``seq`` order, page by page; stop at the first broken entry."""
    async with engine.connect() as connection:
        head = (await connection.execute(sa.select(audit_head.c.seq, audit_head.c.hash))).first()
        walk = _Walk(connection)
        after = 0
        while True:
            select = (
                sa.select(*_COLUMNS)
                .where(audit_log.c.seq > after)
                .order_by(audit_log.c.seq)
                .limit(page)
            )
            rows = (await connection.execute(select)).all()
            for row in rows:
                broken = await walk.step(row)
                if broken is not None:
                    return walk.report(broken)
            if len(rows) < page:
                break
            after = int(rows[-1][1])
        return walk.report(_check_head(walk, head))


class _Walk:
    """The verifier's position: the next expected ``seq``, the last hash and id."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.count = 0
        self.seq = 0
        self.hash = GENESIS
        self.id: int | None = None

    def report(self, broken: Break | None) -> Report:
        return Report(self.count, self.seq, self.hash, broken)

    async def step(self, row: Sequence[Any]) -> Break | None:
        row_id, seq, prev_hash, stored_hash = int(row[0]), int(row[1]), row[2], row[3]
        entry = dict(zip(CHAINED, row[4:], strict=True))
        expected = self.seq + 1
        if seq != expected:
            missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
            return Break(seq, row_id, "deleted", f"the entries before it ({missing}) are missing")
        if chain_hash(prev_hash, entry) != stored_hash:
            return Break(seq, row_id, "edited", "its content does not match its hash")
        if prev_hash != self.hash:
            return await self._unlinked(seq, row_id, prev_hash)
        if self.id is not None and row_id <= self.id:
            return Break(
                seq, row_id, "reordered", f"its id is not after the id {self.id} of seq {seq - 1}"
            )
        self.count, self.seq, self.hash, self.id = self.count + 1, seq, stored_hash, row_id
        return None

    async def _unlinked(self, seq: int, row_id: int, prev_hash: str) -> Break:
        """The entry does not follow the one before it: find what it does follow."""
        found = (
            await self.connection.execute(
                sa.select(audit_log.c.seq).where(audit_log.c.hash == prev_hash).limit(1)
            )
        ).first()
        if found is not None and int(found[0]) != seq - 1:
            return Break(
                seq,
                row_id,
                "reordered",
                f"it follows seq {int(found[0])} in the chain, not seq {seq - 1}",
            )
        before = f"seq {seq - 1}" if seq > 1 else "the start of the chain"
        return Break(
            seq,
            row_id,
            "inserted" if seq > 1 else "deleted",
            f"its prev_hash is not the hash of {before}: an entry before it was replaced, "
            "inserted or deleted",
        )


def _check_head(walk: _Walk, head: Sequence[Any] | None) -> Break | None:
    """After the last entry: the head must name it (else the newest entries were deleted,
    or entries were added outside the chain)."""
    if head is None:
        return Break(walk.seq, walk.id, "deleted", "the chain's head row (audit_head) is missing")
    head_seq, head_hash = int(head[0]), str(head[1])
    if head_seq > walk.seq:
        missing = f"seq {walk.seq + 1}" + (f"..{head_seq}" if head_seq > walk.seq + 1 else "")
        return Break(walk.seq + 1, None, "deleted", f"the newest entries ({missing}) are missing")
    if head_seq < walk.seq:
        added = f"entries after seq {head_seq} were added outside the chain"
        return Break(head_seq + 1, None, "inserted", added)
    if head_hash != walk.hash:
        return Break(walk.seq, walk.id, "edited", "the last entry's hash is not the head's")
    return None

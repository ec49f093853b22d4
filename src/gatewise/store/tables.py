"""The record tables, as SQLAlchemy Core metadata (the migrations create them).

``responses`` holds the Responses API's stored responses. JSON columns are
JSONB on PostgreSQL (queryable by operators) and TEXT on SQLite; the engine
(de)serialises them with orjson. ``response`` is the Response object without
its ``output``, which lives once, in ``output_items``, and is put back on read.

Item ids embed their response's id (see ``gatewise.http.responses_ids``), so
an ``item_reference`` resolves with one primary-key lookup and a response
costs one insert: there is no separate items table.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")

responses = sa.Table(
    "responses",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("previous_response_id", sa.String(64), nullable=True),
    sa.Column("request", JSONDocument, nullable=False),
    sa.Column("response", JSONDocument, nullable=False),
    sa.Column("input_items", JSONDocument, nullable=False),
    sa.Column("output_items", JSONDocument, nullable=False),
    sa.Index("ix_responses_owner_id", "owner", "id"),
)

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

# --- identity: tenants, teams, apps, users, keys, subscriptions, audit -------------------------
#
# Times are UTC epoch seconds (DOUBLE). Foreign keys point up the tree (team -> tenant, ...);
# a key's owner (app or user) is not a foreign key: a deleted owner's keys stay, revoked, so
# the gateway can still tell "revoked" from "unknown" for a while and the audit trail holds.
# ``identity_version`` is one row whose counter every identity mutation bumps (caches reload).

Epoch: sa.Double[float] = sa.Double()

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("display_name", sa.String(256), nullable=True),
    sa.Column("allowed_models", JSONDocument, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("updated_at", Epoch, nullable=False),
    sa.UniqueConstraint("name", name="uq_tenants_name"),
)

teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(32), nullable=False),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("allowed_models", JSONDocument, nullable=True),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("updated_at", Epoch, nullable=False),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_teams_tenant"),
    sa.UniqueConstraint("tenant_id", "name", name="uq_teams_tenant_name"),
)

apps = sa.Table(
    "apps",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(32), nullable=False),
    sa.Column("team_id", sa.String(32), nullable=True),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("allowed_models", JSONDocument, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("updated_at", Epoch, nullable=False),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_apps_tenant"),
    sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name="fk_apps_team"),
    sa.UniqueConstraint("tenant_id", "name", name="uq_apps_tenant_name"),
    sa.Index("ix_apps_team_id", "team_id"),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(32), nullable=True),
    sa.Column("team_id", sa.String(32), nullable=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("updated_at", Epoch, nullable=False),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_users_tenant"),
    sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name="fk_users_team"),
    # Unique per tenant; users without a tenant (platform admins) by the store's check.
    sa.UniqueConstraint("tenant_id", "email", name="uq_users_tenant_email"),
    sa.Index("ix_users_tenant_id", "tenant_id"),
    sa.Index("ix_users_team_id", "team_id"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kid", sa.String(32), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("tenant_id", sa.String(32), nullable=True),
    sa.Column("app_id", sa.String(32), nullable=True),
    sa.Column("user_id", sa.String(32), nullable=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("role", sa.String(32), nullable=True),
    sa.Column("allowed_models", JSONDocument, nullable=True),
    sa.Column("tags", JSONDocument, nullable=False),
    sa.Column("created_at", Epoch, nullable=False),
    sa.Column("expires_at", Epoch, nullable=True),
    sa.Column("revoked_at", Epoch, nullable=True),
    sa.Column("replaced_by", sa.String(32), nullable=True),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_api_keys_tenant"),
    sa.UniqueConstraint("kid", name="uq_api_keys_kid"),
    sa.Index("ix_api_keys_tenant_id", "tenant_id"),
    sa.Index("ix_api_keys_app_id", "app_id"),
    sa.Index("ix_api_keys_user_id", "user_id"),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(32), nullable=False),
    sa.Column("app_id", sa.String(32), nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requested_by", sa.String(512), nullable=False),
    sa.Column("requested_at", Epoch, nullable=False),
    sa.Column("note", sa.String(2000), nullable=True),
    sa.Column("decided_by", sa.String(512), nullable=True),
    sa.Column("decided_at", Epoch, nullable=True),
    sa.Column("reason", sa.String(2000), nullable=True),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_subscriptions_tenant"),
    sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name="fk_subscriptions_app"),
    sa.Index("ix_subscriptions_app_model", "app_id", "model"),
    sa.Index("ix_subscriptions_tenant_status", "tenant_id", "status"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    # BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is an auto-incrementing rowid.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("at", Epoch, nullable=False),
    sa.Column("actor", sa.String(512), nullable=False),
    sa.Column("actor_tenant_id", sa.String(32), nullable=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("object_type", sa.String(32), nullable=False),
    sa.Column("object_id", sa.String(64), nullable=False),
    sa.Column("tenant_id", sa.String(32), nullable=True),
    sa.Column("before", JSONDocument, nullable=True),
    sa.Column("after", JSONDocument, nullable=True),
    sa.Column("request_id", sa.String(128), nullable=True),
    # The hash chain (``gatewise.store.audit_chain``, revision 0007): ``seq`` numbers the
    # entries 1, 2, 3 ... without gaps; ``hash`` is SHA-256 over ``prev_hash`` and the entry.
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("seq", name="uq_audit_log_seq"),
    sa.Index("ix_audit_log_tenant_id", "tenant_id", "id"),
    sa.Index("ix_audit_log_object", "object_type", "object_id"),
    sa.Index("ix_audit_log_at", "at"),
)

# The audit chain's head: one row (id 1), the last entry's ``seq`` and ``hash``. Every append
# updates it first, which serialises appenders on both engines (its row lock on PostgreSQL, the
# write lock on SQLite) and lets ``verify`` notice the newest entries being deleted.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

identity_version = sa.Table(
    "identity_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)

# --- usage: the model calls answered or refused after authentication, summed per minute ---------
#
# Written in batches by ``gatewise.store.usage_writer.UsageWriter``, never on the request path. A
# row sums the ``requests`` calls of one minute (``at``, its start) that share every id, the model,
# provider, operation, stream flag, status and ``usage_estimated``: a row per call cost the writer
# 5-10 µs of CPU per call, a rollup a few rows a minute. Rows from before revision 0004 are one call
# each (with their ``request_id``). Ids are denormalised (no foreign keys): usage outlives deleted
# apps and keys, and an insert must not wait on identity rows. ``cost_micros`` is the integer
# micro-USD of the calls that had a price (NULL when none had), ``cost_unknown`` counts those
# without one; ``duration_ms`` is the calls' total. Reports scan a time range (ix_usage_at) or one
# tenant's range (ix_usage_tenant_at).

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Column("at", Epoch, nullable=False),
    sa.Column("tenant_id", sa.String(32), nullable=True),
    sa.Column("team_id", sa.String(32), nullable=True),
    sa.Column("app_id", sa.String(32), nullable=True),
    sa.Column("user_id", sa.String(32), nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("provider", sa.String(64), nullable=True),
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
    sa.Column("completion_tokens", sa.BigInteger, nullable=False),
    sa.Column("cached_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_micros", sa.BigInteger, nullable=True),
    sa.Column("usage_estimated", sa.Boolean, nullable=False),
    sa.Column("duration_ms", sa.Double, nullable=False),
    sa.Column("requests", sa.BigInteger, nullable=False, server_default=sa.text("1")),
    sa.Column("cost_unknown", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Index("ix_usage_tenant_at", "tenant_id", "at"),
    sa.Index("ix_usage_at", "at"),
)

# --- request records: one row per request, for lookups and analytics ---------------------------
#
# Written in batches by the request-records writer (``gatewise.store.records_writer``), never on
# the request path. ``at`` is when the request arrived (UTC epoch seconds); on PostgreSQL the table
# is partitioned by range of ``at`` (one partition per day, made ahead by the writer and dropped
# whole when every tenant's retention has passed), so the primary key holds ``at`` too. Ids are
# denormalised like usage's. ``attempts``, ``guardrails`` and ``decisions`` are JSON lists (never
# a raw value a guardrail found: types and offsets only); ``request_body`` / ``response_body``
# are filled per the tenant's privacy mode (``off``: NULL, ``redacted``, ``full``).

request_records = sa.Table(
    "request_records",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("at", Epoch, primary_key=True),
    sa.Column("trace_id", sa.String(32), nullable=True),
    sa.Column("tenant_id", sa.String(32), nullable=True),
    sa.Column("team_id", sa.String(32), nullable=True),
    sa.Column("app_id", sa.String(32), nullable=True),
    sa.Column("user_id", sa.String(32), nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("front_door", sa.String(16), nullable=False),
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(256), nullable=False),
    sa.Column("model", sa.String(256), nullable=True),
    sa.Column("deployment", sa.String(128), nullable=True),
    sa.Column("provider", sa.String(64), nullable=True),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("error_type", sa.String(64), nullable=True),
    sa.Column("duration_ms", sa.Double, nullable=False),
    sa.Column("first_byte_ms", sa.Double, nullable=True),
    sa.Column("overhead_ms", sa.Double, nullable=True),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
    sa.Column("completion_tokens", sa.BigInteger, nullable=False),
    sa.Column("cached_tokens", sa.BigInteger, nullable=False),
    sa.Column("usage_estimated", sa.Boolean, nullable=False),
    sa.Column("cost_micros", sa.BigInteger, nullable=True),
    sa.Column("cache", sa.String(16), nullable=True),
    sa.Column("attempts", JSONDocument, nullable=True),
    sa.Column("guardrails", JSONDocument, nullable=True),
    sa.Column("decisions", JSONDocument, nullable=True),
    sa.Column("client_ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(512), nullable=True),
    sa.Column("privacy", sa.String(16), nullable=False),
    sa.Column("request_body", sa.Text, nullable=True),
    sa.Column("response_body", sa.Text, nullable=True),
    sa.Index("ix_request_records_tenant_at", "tenant_id", "at"),
    sa.Index("ix_request_records_at", "at"),
    sa.Index("ix_request_records_key_at", "key_id", "at"),
)


#: Tables made at run time, not by a migration: ``request_records``' partitions on PostgreSQL.
PARTITION_PREFIX = "request_records_"


def declared(name: str | None, type_: str, parent_names: object) -> bool:
    """Whether a schema object is one the migrations declare (Alembic's ``include_name``):
    partitions of ``request_records`` (and their indexes) are made by the writer instead."""
    if type_ == "table" and name is not None:
        return not name.startswith(PARTITION_PREFIX)
    return True

"""Identity: tenants, teams, apps, users, API keys, subscriptions, audit log, version counter.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Spelled out here, not imported from tables.py: a migration is a snapshot in time.
JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")
Epoch: sa.Double[float] = sa.Double()


def _id(name: str = "id") -> sa.Column[str]:
    return sa.Column(name, sa.String(32), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        _id(),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=True),
        sa.Column("allowed_models", JSONDocument, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", Epoch, nullable=False),
        sa.Column("updated_at", Epoch, nullable=False),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.create_table(
        "teams",
        _id(),
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("allowed_models", JSONDocument, nullable=True),
        sa.Column("created_at", Epoch, nullable=False),
        sa.Column("updated_at", Epoch, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_teams_tenant"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_teams_tenant_name"),
    )
    op.create_table(
        "apps",
        _id(),
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
    )
    op.create_index("ix_apps_team_id", "apps", ["team_id"])
    op.create_table(
        "users",
        _id(),
        sa.Column("tenant_id", sa.String(32), nullable=True),
        sa.Column("team_id", sa.String(32), nullable=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", Epoch, nullable=False),
        sa.Column("updated_at", Epoch, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_users_tenant"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name="fk_users_team"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_index("ix_users_tenant_id", "users", ["tenant_id"])
    op.create_index("ix_users_team_id", "users", ["team_id"])
    op.create_table(
        "api_keys",
        _id(),
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
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_index("ix_api_keys_app_id", "api_keys", ["app_id"])
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    op.create_table(
        "subscriptions",
        _id(),
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
    )
    op.create_index("ix_subscriptions_app_model", "subscriptions", ["app_id", "model"])
    op.create_index("ix_subscriptions_tenant_status", "subscriptions", ["tenant_id", "status"])
    op.create_table(
        "audit_log",
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
    )
    op.create_index("ix_audit_log_tenant_id", "audit_log", ["tenant_id", "id"])
    op.create_index("ix_audit_log_object", "audit_log", ["object_type", "object_id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    version = op.create_table(
        "identity_version",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(version, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("identity_version")
    for index in ("ix_audit_log_at", "ix_audit_log_object", "ix_audit_log_tenant_id"):
        op.drop_index(index, table_name="audit_log")
    op.drop_table("audit_log")
    for index in ("ix_subscriptions_tenant_status", "ix_subscriptions_app_model"):
        op.drop_index(index, table_name="subscriptions")
    op.drop_table("subscriptions")
    for index in ("ix_api_keys_user_id", "ix_api_keys_app_id", "ix_api_keys_tenant_id"):
        op.drop_index(index, table_name="api_keys")
    op.drop_table("api_keys")
    for index in ("ix_users_team_id", "ix_users_tenant_id"):
        op.drop_index(index, table_name="users")
    op.drop_table("users")
    op.drop_index("ix_apps_team_id", table_name="apps")
    op.drop_table("apps")
    op.drop_table("teams")
    op.drop_table("tenants")

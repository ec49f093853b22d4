"""A user's email is unique within its tenant, no longer across every tenant.

With one global unique email, creating a user whose address exists in another
tenant answered 409: a tenant admin could probe which addresses other tenants
hold. Now ``(tenant_id, email)`` is unique; users without a tenant (platform
admins) are kept unique by the store, which checks under the identity write
lock (NULL tenants never collide in a unique constraint). Rows are kept as
they are: every database the old rule allowed satisfies the new one.

Downgrading restores the global rule and fails if an email has meanwhile been
given to users of two tenants.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_email", type_="unique")
        batch.create_unique_constraint("uq_users_tenant_email", ["tenant_id", "email"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_tenant_email", type_="unique")
        batch.create_unique_constraint("uq_users_email", ["email"])

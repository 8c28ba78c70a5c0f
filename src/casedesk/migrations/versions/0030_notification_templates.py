"""notification templates: a tenant's own subject, text and HTML of a kind of mail casedesk
writes, per language

Revision ID: 0030
Revises: 0029
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=1000), nullable=False),
        sa.Column("text", casedesk.store.types.LongText(), nullable=False),
        sa.Column("html", casedesk.store.types.LongText(), nullable=True),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_notification_templates_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
            name=op.f("fk_notification_templates_updated_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_templates")),
        sa.UniqueConstraint(
            "tenant_id",
            "kind",
            "language",
            name=op.f("uq_notification_templates_tenant_id_kind_language"),
        ),
    )
    with op.batch_alter_table("notification_templates") as table:
        table.create_index(op.f("ix_notification_templates_tenant_id"), ["tenant_id"])


def downgrade() -> None:
    op.drop_table("notification_templates")

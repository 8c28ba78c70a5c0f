"""mailboxes: tenants' IMAP accounts polled for mail, with their cursors

Revision ID: 0027
Revises: 0026
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("security", sa.String(length=16), nullable=False),
        sa.Column("tls_verify", sa.Boolean(), nullable=False),
        sa.Column("tls_ca", sa.Text(), nullable=True),
        sa.Column("username", sa.String(length=320), nullable=False),
        sa.Column("auth", sa.String(length=16), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=True),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("after_fetch", sa.String(length=16), nullable=False),
        sa.Column("move_to", sa.String(length=255), nullable=True),
        sa.Column("poll_seconds", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=63), nullable=False),
        sa.Column("queue", sa.String(length=63), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("last_poll_at", casedesk.store.types.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_count", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_mailboxes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailboxes")),
    )
    with op.batch_alter_table("mailboxes") as table:
        table.create_index(op.f("ix_mailboxes_tenant_id"), ["tenant_id"])


def downgrade() -> None:
    op.drop_table("mailboxes")

"""attachments: files of cases and comments, their bytes in the blob store by SHA-256;
comments count theirs

Revision ID: 0029
Revises: 0028
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("comment_id", sa.Uuid(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=127), nullable=False),
        sa.Column("declared_type", sa.String(length=127), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("inline", sa.Boolean(), nullable=False),
        sa.Column("content_id", sa.String(length=255), nullable=True),
        sa.Column("uploaded_by_type", sa.String(length=16), nullable=False),
        sa.Column("uploaded_by_id", sa.String(length=64), nullable=True),
        sa.Column("uploaded_by_name", sa.String(length=320), nullable=True),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_attachments_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_attachments_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_attachments_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    with op.batch_alter_table("comments") as table:
        table.add_column(
            sa.Column("attachment_count", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("attachments") as table:
        table.create_index("ix_attachments_case", ["case_id", "id"])
        table.create_index("ix_attachments_sha256", ["sha256"])
        table.create_index(op.f("ix_attachments_tenant_id"), ["tenant_id"])


def downgrade() -> None:
    op.drop_table("attachments")
    with op.batch_alter_table("comments") as table:
        table.drop_column("attachment_count")

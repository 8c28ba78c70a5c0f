"""trace records

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trace_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("execution_id", sa.String(length=64), nullable=True),
        sa.Column("connection_id", sa.Uuid(), nullable=True),
        sa.Column("connector", sa.String(length=63), nullable=False),
        sa.Column("action", sa.String(length=63), nullable=True),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("started_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("ttfb_ms", sa.Float(), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_trace_records_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trace_records")),
    )
    with op.batch_alter_table("trace_records", schema=None) as batch_op:
        batch_op.create_index("ix_trace_records_started", ["started_at"], unique=False)
        batch_op.create_index(
            "ix_trace_records_tenant_connection",
            ["tenant_id", "connection_id", "started_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_trace_records_tenant_execution",
            ["tenant_id", "execution_id", "started_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_trace_records_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_trace_records_tenant_started", ["tenant_id", "started_at", "id"], unique=False
        )


def downgrade() -> None:
    # Dropping a table drops its indexes; MariaDB refuses to drop one a foreign key uses.
    op.drop_table("trace_records")

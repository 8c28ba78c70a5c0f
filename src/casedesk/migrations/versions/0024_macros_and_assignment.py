"""macros and assignment: canned replies, users' availability, queues' assignment mode

Revision ID: 0024
Revises: 0023
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as table:
        table.add_column(
            sa.Column(
                "availability", sa.String(length=16), server_default="available", nullable=False
            )
        )
    with op.batch_alter_table("queues") as table:
        table.add_column(
            sa.Column("assignment", sa.String(length=16), server_default="manual", nullable=False)
        )
        table.add_column(sa.Column("round_robin_last_id", sa.Uuid(), nullable=True))

    op.create_table(
        "macros",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("body", casedesk.store.types.LongText(), nullable=False),
        sa.Column("public", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_macros_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_macros_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_macros")),
    )
    with op.batch_alter_table("macros") as table:
        table.create_index("ix_macros_owner_id", ["owner_id"])
        table.create_index(op.f("ix_macros_tenant_id"), ["tenant_id"])


def downgrade() -> None:
    op.drop_table("macros")
    with op.batch_alter_table("queues") as table:
        table.drop_column("round_robin_last_id")
        table.drop_column("assignment")
    with op.batch_alter_table("users") as table:
        table.drop_column("availability")

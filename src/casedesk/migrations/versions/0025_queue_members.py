"""queue members: the agents who work a queue; SLA clocks by status and target

Revision ID: 0025
Revises: 0024
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_members",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("queue_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_queue_members_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_queue_members_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_queue_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_members")),
        sa.UniqueConstraint("queue_id", "user_id", name=op.f("uq_queue_members_queue_id_user_id")),
    )
    with op.batch_alter_table("queue_members") as table:
        table.create_index("ix_queue_members_user_id", ["user_id"])
        table.create_index(op.f("ix_queue_members_tenant_id"), ["tenant_id"])

    with op.batch_alter_table("case_slas") as table:
        table.create_index(
            "ix_case_slas_tenant_status_target", ["tenant_id", "status", "target_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("case_slas") as table:
        table.drop_index("ix_case_slas_tenant_status_target")
    op.drop_table("queue_members")

"""events say what they are about; the relay moves poison events aside; SLA clocks keep
the last event they applied

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_events") as table:
        table.add_column(
            sa.Column("subject_type", sa.String(31), nullable=False, server_default="case")
        )
        table.add_column(sa.Column("dead_at", casedesk.store.types.UTCDateTime(), nullable=True))
    with op.batch_alter_table("case_slas") as table:
        table.add_column(sa.Column("applied_sequence", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_slas") as table:
        table.drop_column("applied_sequence")
    with op.batch_alter_table("outbox_events") as table:
        table.drop_column("dead_at")
        table.drop_column("subject_type")

"""dead letter replay

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as table:
        table.add_column(sa.Column("replay_status", sa.String(length=16), nullable=True))
        table.add_column(
            sa.Column("replay_requested_at", casedesk.store.types.UTCDateTime(), nullable=True)
        )
        table.add_column(
            sa.Column("replayed_at", casedesk.store.types.UTCDateTime(), nullable=True)
        )
        table.add_column(sa.Column("replay_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as table:
        table.drop_column("replay_error")
        table.drop_column("replayed_at")
        table.drop_column("replay_requested_at")
        table.drop_column("replay_status")

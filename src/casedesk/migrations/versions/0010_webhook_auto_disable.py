"""webhooks disabled after failing for days

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as table:
        table.add_column(
            sa.Column("failing_since", casedesk.store.types.UTCDateTime(), nullable=True)
        )
        table.add_column(
            sa.Column("disabled_at", casedesk.store.types.UTCDateTime(), nullable=True)
        )
        table.add_column(sa.Column("disabled_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as table:
        table.drop_column("disabled_reason")
        table.drop_column("disabled_at")
        table.drop_column("failing_since")

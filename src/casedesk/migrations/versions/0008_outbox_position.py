"""outbox feed position

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox_events", sa.Column("position", sa.BigInteger(), nullable=True))
    # Events already delivered keep their sequence as their place, so that a feed reader's
    # saved cursor stays valid; the relay places the next ones after the highest of them.
    op.execute("UPDATE outbox_events SET position = id WHERE published_at IS NOT NULL")
    op.create_index("ux_outbox_events_position", "outbox_events", ["position"], unique=True)
    op.create_index("ix_outbox_events_tenant_position", "outbox_events", ["tenant_id", "position"])


def downgrade() -> None:
    op.drop_index("ix_outbox_events_tenant_position", table_name="outbox_events")
    op.drop_index("ux_outbox_events_position", table_name="outbox_events")
    op.drop_column("outbox_events", "position")

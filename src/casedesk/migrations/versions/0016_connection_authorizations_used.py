"""an OAuth2 authorization says when its state was used, so a second callback is refused
as used rather than as unknown

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connection_authorizations") as table:
        table.add_column(sa.Column("used_at", casedesk.store.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connection_authorizations") as table:
        table.drop_column("used_at")

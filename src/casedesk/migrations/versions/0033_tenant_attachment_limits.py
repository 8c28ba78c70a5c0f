"""tenants: their own attachment size limit and quota, in place of the deployment's

Revision ID: 0033
Revises: 0032
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.add_column(sa.Column("attachment_max_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("attachment_quota_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.drop_column("attachment_quota_bytes")
        batch_op.drop_column("attachment_max_bytes")

"""mailboxes' outgoing server: SMTP for replies and casedesk's own mail, a DKIM key, and
whether a new case is acknowledged

Revision ID: 0028
Revises: 0027
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch_op:
        batch_op.add_column(sa.Column("smtp_host", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("smtp_port", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("smtp_security", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("smtp_username", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("smtp_secret_sealed", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("from_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("dkim_selector", sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column("dkim_key_sealed", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("acknowledge", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch_op:
        for name in (
            "acknowledge",
            "dkim_key_sealed",
            "dkim_selector",
            "from_name",
            "smtp_secret_sealed",
            "smtp_username",
            "smtp_security",
            "smtp_port",
            "smtp_host",
        ):
            batch_op.drop_column(name)

"""executions listed by subscription

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_executions_tenant_subscription",
        "executions",
        ["tenant_id", "subscription_id", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_executions_tenant_subscription", table_name="executions")

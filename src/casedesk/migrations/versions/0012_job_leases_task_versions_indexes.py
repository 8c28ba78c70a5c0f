"""task versions; indexes for housekeeping of jobs and idempotency records and for case filters

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as table:
        table.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    op.create_index("ix_scheduled_jobs_finished", "scheduled_jobs", ["status", "updated_at"])
    op.create_index("ix_idempotency_records_created_at", "idempotency_records", ["created_at"])
    op.create_index("ix_cases_tenant_closed", "cases", ["tenant_id", "closed", "id"])
    op.create_index("ix_cases_tenant_created", "cases", ["tenant_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_cases_tenant_created", table_name="cases")
    op.drop_index("ix_cases_tenant_closed", table_name="cases")
    op.drop_index("ix_idempotency_records_created_at", table_name="idempotency_records")
    op.drop_index("ix_scheduled_jobs_finished", table_name="scheduled_jobs")
    with op.batch_alter_table("tasks") as table:
        table.drop_column("version")

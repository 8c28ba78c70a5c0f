"""a case's tasks by (case, tenant, id), so SQLite's planner takes that index without statistics

Revision ID: 0026
Revises: 0025
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The new index first: on MariaDB/MySQL the foreign key on case_id needs one at all times.
    op.create_index("ix_tasks_case", "tasks", ["case_id", "tenant_id", "id"], unique=False)
    op.drop_index("ix_tasks_case_id", table_name="tasks")


def downgrade() -> None:
    op.create_index("ix_tasks_case_id", "tasks", ["case_id"], unique=False)
    op.drop_index("ix_tasks_case", table_name="tasks")

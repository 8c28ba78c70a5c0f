"""sla policies and clocks

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sla_policies",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=True),
        sa.Column("priority", sa.SmallInteger(), nullable=True),
        sa.Column("first_response_minutes", sa.Integer(), nullable=True),
        sa.Column("resolution_minutes", sa.Integer(), nullable=True),
        sa.Column("warning_percent", sa.SmallInteger(), nullable=False),
        sa.Column("calendar", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"], ["templates.id"], name=op.f("fk_sla_policies_template_id_templates")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_sla_policies_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
        sa.UniqueConstraint(
            "tenant_id",
            "template_id",
            "priority",
            name=op.f("uq_sla_policies_tenant_id_template_id_priority"),
        ),
    )
    with op.batch_alter_table("sla_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sla_policies_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "case_slas",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("policy_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("target_minutes", sa.Integer(), nullable=False),
        sa.Column("target_at", casedesk.store.types.UTCDateTime(), nullable=True),
        sa.Column("warning_at", casedesk.store.types.UTCDateTime(), nullable=True),
        sa.Column("remaining_seconds", sa.Integer(), nullable=True),
        sa.Column("warned", sa.Boolean(), nullable=False),
        sa.Column("met_at", casedesk.store.types.UTCDateTime(), nullable=True),
        sa.Column("breached_at", casedesk.store.types.UTCDateTime(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_slas_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["sla_policies.id"], name=op.f("fk_case_slas_policy_id_sla_policies")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_case_slas_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_slas")),
        sa.UniqueConstraint("case_id", "metric", name=op.f("uq_case_slas_case_id_metric")),
    )
    with op.batch_alter_table("case_slas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_slas_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_table("case_slas")
    op.drop_table("sla_policies")

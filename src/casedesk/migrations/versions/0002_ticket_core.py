"""ticket core: queues, state machines, templates, cases, tasks, comments, action records, outbox

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_counters",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_case_counters_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_case_counters")),
    )
    op.create_table(
        "customers",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_customers_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("tenant_id", "email", name=op.f("uq_customers_tenant_id_email")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customers_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "idempotency_records",
        sa.Column("scope", sa.String(length=63), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_idempotency_records_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint(
            "tenant_id", "scope", "key", name=op.f("uq_idempotency_records_tenant_id_scope_key")
        ),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "outbox_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=63), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("time", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("traceparent", sa.String(length=55), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_outbox_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_events_event_id")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_events_subject", ["subject_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_events_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_outbox_events_tenant_id_id", ["tenant_id", "id"], unique=False)

    op.create_table(
        "queues",
        sa.Column("code", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_queues_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queues")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_queues_tenant_id_code")),
    )
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queues_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "state_machines",
        sa.Column("code", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("draft", sa.JSON(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_state_machines_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_state_machines")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_state_machines_tenant_id_code")),
    )
    with op.batch_alter_table("state_machines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_state_machines_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "state_machine_versions",
        sa.Column("machine_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("published_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("published_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["machine_id"],
            ["state_machines.id"],
            name=op.f("fk_state_machine_versions_machine_id_state_machines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_state_machine_versions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_state_machine_versions")),
        sa.UniqueConstraint(
            "machine_id", "version", name=op.f("uq_state_machine_versions_machine_id_version")
        ),
    )
    with op.batch_alter_table("state_machine_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_state_machine_versions_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "templates",
        sa.Column("code", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("machine_id", sa.Uuid(), nullable=False),
        sa.Column("form_schema", sa.JSON(), nullable=False),
        sa.Column("default_queue_id", sa.Uuid(), nullable=False),
        sa.Column("default_priority", sa.SmallInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["default_queue_id"], ["queues.id"], name=op.f("fk_templates_default_queue_id_queues")
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"],
            ["state_machines.id"],
            name=op.f("fk_templates_machine_id_state_machines"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_templates_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_templates_tenant_id_code")),
    )
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_templates_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "cases",
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("machine_version_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=63), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("queue_id", sa.Uuid(), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=63), nullable=False),
        sa.Column("external_ref", sa.String(length=255), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("form", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("closed_at", casedesk.store.types.UTCDateTime(), nullable=True),
        sa.Column("rating_score", sa.SmallInteger(), nullable=True),
        sa.Column("rating_comment", sa.Text(), nullable=True),
        sa.Column("rated_at", casedesk.store.types.UTCDateTime(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_cases_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_cases_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["machine_version_id"],
            ["state_machine_versions.id"],
            name=op.f("fk_cases_machine_version_id_state_machine_versions"),
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["cases.id"], name=op.f("fk_cases_parent_id_cases")),
        sa.ForeignKeyConstraint(["queue_id"], ["queues.id"], name=op.f("fk_cases_queue_id_queues")),
        sa.ForeignKeyConstraint(
            ["template_id"], ["templates.id"], name=op.f("fk_cases_template_id_templates")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_cases_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint(
            "tenant_id",
            "channel",
            "external_ref",
            name=op.f("uq_cases_tenant_id_channel_external_ref"),
        ),
        sa.UniqueConstraint("tenant_id", "number", name=op.f("uq_cases_tenant_id_number")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_parent_id", ["parent_id"], unique=False)
        batch_op.create_index(
            "ix_cases_tenant_assignee", ["tenant_id", "assignee_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_cases_tenant_customer", ["tenant_id", "customer_id", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cases_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_cases_tenant_id_id", ["tenant_id", "id"], unique=False)
        batch_op.create_index(
            "ix_cases_tenant_priority", ["tenant_id", "priority", "id"], unique=False
        )
        batch_op.create_index(
            "ix_cases_tenant_queue", ["tenant_id", "queue_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_cases_tenant_queue_state", ["tenant_id", "queue_id", "state", "id"], unique=False
        )
        batch_op.create_index("ix_cases_tenant_state", ["tenant_id", "state", "id"], unique=False)
        batch_op.create_index(
            "ix_cases_tenant_template", ["tenant_id", "template_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_cases_tenant_updated", ["tenant_id", "updated_at", "id"], unique=False
        )

    op.create_table(
        "action_records",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(length=63), nullable=False),
        sa.Column("memo", sa.JSON(), nullable=False),
        sa.Column("operator_type", sa.String(length=16), nullable=False),
        sa.Column("operator_id", sa.String(length=64), nullable=True),
        sa.Column("operator_name", sa.String(length=320), nullable=True),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_action_records_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_action_records_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_records")),
    )
    with op.batch_alter_table("action_records", schema=None) as batch_op:
        batch_op.create_index("ix_action_records_case_id", ["case_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_action_records_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "comments",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("author_type", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("author_name", sa.String(length=320), nullable=True),
        sa.Column("channel", sa.String(length=63), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_comments_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_comments_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index("ix_comments_case_id", ["case_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_comments_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "tasks",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("queue_id", sa.Uuid(), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_before_close", sa.String(length=16), nullable=True),
        sa.Column("accepted_at", casedesk.store.types.UTCDateTime(), nullable=True),
        sa.Column("done_at", casedesk.store.types.UTCDateTime(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_tasks_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_tasks_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["queue_id"], ["queues.id"], name=op.f("fk_tasks_queue_id_queues")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tasks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_case_id", ["case_id"], unique=False)
        batch_op.create_index(
            "ix_tasks_tenant_assignee_status", ["tenant_id", "assignee_id", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_tasks_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_tasks_tenant_queue_status", ["tenant_id", "queue_id", "status"], unique=False
        )
    # Tenants created before cases existed get their case counter now.
    op.execute("INSERT INTO case_counters (tenant_id, last_number) SELECT id, 0 FROM tenants")


def downgrade() -> None:
    for table in (
        "tasks",
        "comments",
        "action_records",
        "cases",
        "templates",
        "state_machine_versions",
        "state_machines",
        "queues",
        "outbox_events",
        "idempotency_records",
        "customers",
        "case_counters",
    ):
        op.drop_table(table)

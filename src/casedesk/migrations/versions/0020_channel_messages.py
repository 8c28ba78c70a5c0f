"""channels: the messages casedesk knows per channel, and comments' thread and delivery

A comment from a channel is unique per tenant, channel and external id. Comments written
through the API before this revision may repeat a pair; the later ones keep their external
id with their own id behind it (``<external id>~<comment id>``), so none is lost and the
constraint can hold.

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _separate_repeated_external_ids() -> None:
    comments = sa.table(
        "comments",
        sa.column("id", sa.Uuid()),
        sa.column("tenant_id", sa.Uuid()),
        sa.column("channel", sa.String()),
        sa.column("external_id", sa.String()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(comments.c.id, comments.c.tenant_id, comments.c.channel, comments.c.external_id)
        .where(comments.c.external_id.is_not(None))
        .order_by(comments.c.id)
    ).all()
    seen: set[tuple[object, object, object]] = set()
    for row in rows:
        key = (row.tenant_id, row.channel, row.external_id)
        if key not in seen:
            seen.add(key)
            continue
        suffix = f"~{row.id}"
        bind.execute(
            sa.update(comments)
            .where(comments.c.id == row.id)
            .values(external_id=row.external_id[: 255 - len(suffix)] + suffix)
        )


def upgrade() -> None:
    _separate_repeated_external_ids()
    with op.batch_alter_table("comments") as table:
        table.add_column(sa.Column("thread_id", sa.String(length=255), nullable=True))
        table.add_column(sa.Column("delivery_status", sa.String(length=16), nullable=True))
        table.add_column(
            sa.Column("delivery_error", casedesk.store.types.LongText(), nullable=True)
        )
        table.add_column(sa.Column("delivered_id", sa.String(length=255), nullable=True))
        table.add_column(
            sa.Column("delivery_attempts", sa.Integer(), server_default="0", nullable=False)
        )
        table.add_column(sa.Column("edited_at", casedesk.store.types.UTCDateTime(), nullable=True))
        table.add_column(sa.Column("deleted_at", casedesk.store.types.UTCDateTime(), nullable=True))
        table.create_unique_constraint(
            "uq_comments_tenant_id_channel_external_id", ["tenant_id", "channel", "external_id"]
        )

    op.create_table(
        "channel_messages",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("comment_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=63), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("thread_id", sa.String(length=255), nullable=True),
        sa.Column("message_key", sa.String(length=255), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=True),
        sa.Column("reply", sa.JSON(), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_channel_messages_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_channel_messages_comment_id_comments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_channel_messages_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_messages")),
        sa.UniqueConstraint(
            "tenant_id",
            "channel",
            "external_id",
            name=op.f("uq_channel_messages_tenant_id_channel_external_id"),
        ),
    )
    with op.batch_alter_table("channel_messages") as table:
        table.create_index(
            "ix_channel_messages_thread", ["tenant_id", "channel", "thread_id", "id"]
        )
        table.create_index("ix_channel_messages_message_key", ["tenant_id", "message_key"])
        table.create_index("ix_channel_messages_case", ["case_id", "id"])
        table.create_index(op.f("ix_channel_messages_tenant_id"), ["tenant_id"])


def downgrade() -> None:
    op.drop_table("channel_messages")
    with op.batch_alter_table("comments") as table:
        table.drop_constraint("uq_comments_tenant_id_channel_external_id", type_="unique")
        for column in (
            "deleted_at",
            "edited_at",
            "delivery_attempts",
            "delivered_id",
            "delivery_error",
            "delivery_status",
            "thread_id",
        ):
            table.drop_column(column)

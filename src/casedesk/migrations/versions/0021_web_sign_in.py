"""web sign-in: users' passwords and preferences, browser sessions, one-time links

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_and_user(table: str) -> list[Any]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f(f"fk_{table}_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    with op.batch_alter_table("users") as table:
        table.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        table.add_column(
            sa.Column("failed_sign_ins", sa.Integer(), server_default="0", nullable=False)
        )
        table.add_column(
            sa.Column("sign_in_blocked_until", casedesk.store.types.UTCDateTime(), nullable=True)
        )
        table.add_column(sa.Column("locale", sa.String(length=16), nullable=True))
        table.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))

    op.create_table(
        "web_sessions",
        *_tenant_and_user("web_sessions"),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", casedesk.store.types.UTCDateTime(), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    with op.batch_alter_table("web_sessions") as table:
        table.create_index("ix_web_sessions_user_id", ["user_id"])
        table.create_index(op.f("ix_web_sessions_tenant_id"), ["tenant_id"])

    op.create_table(
        "one_time_links",
        *_tenant_and_user("one_time_links"),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("expires_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", casedesk.store.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('invite', 'reset')", name=op.f("ck_one_time_links_purpose")
        ),
        sa.UniqueConstraint("token_hash", name=op.f("uq_one_time_links_token_hash")),
    )
    with op.batch_alter_table("one_time_links") as table:
        table.create_index("ix_one_time_links_user_id", ["user_id"])
        table.create_index(op.f("ix_one_time_links_tenant_id"), ["tenant_id"])


def downgrade() -> None:
    op.drop_table("one_time_links")
    op.drop_table("web_sessions")
    with op.batch_alter_table("users") as table:
        for column in ("time_zone", "locale", "sign_in_blocked_until", "failed_sign_ins"):
            table.drop_column(column)
        table.drop_column("password_hash")

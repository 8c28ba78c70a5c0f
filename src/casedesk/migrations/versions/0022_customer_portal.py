"""customer portal: customers' sessions and sign-in links, public templates

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_and_customer(table: str) -> list[Any]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f(f"fk_{table}_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f(f"fk_{table}_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("token_hash", name=op.f(f"uq_{table}_token_hash")),
    ]


def upgrade() -> None:
    with op.batch_alter_table("templates") as table:
        table.add_column(
            sa.Column("public", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    op.create_table(
        "portal_sessions",
        *_tenant_and_customer("portal_sessions"),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("last_seen_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", casedesk.store.types.UTCDateTime(), nullable=True),
    )
    op.create_table(
        "portal_links",
        *_tenant_and_customer("portal_links"),
        sa.Column("used_at", casedesk.store.types.UTCDateTime(), nullable=True),
    )
    for table_name in ("portal_sessions", "portal_links"):
        with op.batch_alter_table(table_name) as table:
            table.create_index(f"ix_{table_name}_customer_id", ["customer_id"])
            table.create_index(op.f(f"ix_{table_name}_tenant_id"), ["tenant_id"])


def downgrade() -> None:
    op.drop_table("portal_links")
    op.drop_table("portal_sessions")
    with op.batch_alter_table("templates") as table:
        table.drop_column("public")

"""Alembic environment: runs on the connection handed in by casedesk.store.migrate."""

from __future__ import annotations

from alembic import context

from casedesk.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `casedesk db upgrade`, which supplies the database")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

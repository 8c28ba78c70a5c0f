"""search: a document per case, its text as the engines' tokens, and each database's own
full-text index over them

Revision ID: 0034
Revises: 0033
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import casedesk.store.types

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite: an FTS5 table over the documents' rows (external content: it keeps only the index),
# kept in step by triggers. The tokens are casedesk's own (domain/search/tokens.py), so the
# tokenizer only splits them on spaces and folds nothing more.
SQLITE = (
    "CREATE VIRTUAL TABLE search_fts USING fts5(public_tokens, internal_tokens, "
    "content='search_documents', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0', detail=full)",
    "CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN "
    "INSERT INTO search_fts(rowid, public_tokens, internal_tokens) "
    "VALUES (new.id, new.public_tokens, new.internal_tokens); END",
    "CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, public_tokens, internal_tokens) "
    "VALUES ('delete', old.id, old.public_tokens, old.internal_tokens); END",
    "CREATE TRIGGER search_documents_au AFTER UPDATE OF public_tokens, internal_tokens "
    "ON search_documents BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, public_tokens, internal_tokens) "
    "VALUES ('delete', old.id, old.public_tokens, old.internal_tokens); "
    "INSERT INTO search_fts(rowid, public_tokens, internal_tokens) "
    "VALUES (new.id, new.public_tokens, new.internal_tokens); END",
)
# PostgreSQL: the tokens as tsvectors of the 'simple' configuration (no stemming, no
# stopwords), generated from the two columns, each under a GIN index. Without a pending list
# (fastupdate off): every search would otherwise read the entries not yet merged, until a
# vacuum merges them (a rare word took 20 ms at 100,000 documents, against 1 ms).
POSTGRESQL = (
    "ALTER TABLE search_documents ADD COLUMN public_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple', public_tokens)) STORED",
    "ALTER TABLE search_documents ADD COLUMN internal_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple', internal_tokens)) STORED",
    "CREATE INDEX ix_search_documents_public_vector ON search_documents USING gin (public_vector)",
    "CREATE INDEX ix_search_documents_internal_vector ON search_documents "
    "USING gin (internal_vector) WITH (fastupdate = off)",
)
# MariaDB: InnoDB FULLTEXT indexes, one over the public tokens and one over both columns
# (MATCH names exactly the columns of an index).
MARIADB = (
    "ALTER TABLE search_documents ADD FULLTEXT INDEX ft_search_documents_public (public_tokens)",
    "ALTER TABLE search_documents ADD FULLTEXT INDEX ft_search_documents_all "
    "(public_tokens, internal_tokens)",
)


def upgrade() -> None:
    op.create_table(
        "search_documents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("public_tokens", casedesk.store.types.LongText(), nullable=False),
        sa.Column("internal_tokens", casedesk.store.types.LongText(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("indexed_at", casedesk.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_search_documents_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_search_documents_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_documents")),
        sa.UniqueConstraint("case_id", name=op.f("uq_search_documents_case_id")),
    )
    op.create_index(op.f("ix_search_documents_tenant_id"), "search_documents", ["tenant_id"])
    dialect = op.get_bind().dialect.name
    statements = {"sqlite": SQLITE, "postgresql": POSTGRESQL, "mysql": MARIADB}
    for statement in statements.get("mysql" if dialect == "mariadb" else dialect, ()):
        op.execute(statement)
    plan_reindex(op.get_bind())


def plan_reindex(connection: sa.Connection) -> int:
    """A ``search.reindex`` job for each tenant that has cases, due now: the workers index
    the cases made before search existed (``worker/search_index.Reindexing``). How many."""
    cases = sa.table("cases", sa.column("tenant_id", sa.Uuid()))
    tenants = [row[0] for row in connection.execute(sa.select(cases.c.tenant_id).distinct())]
    if not tenants:
        return 0
    jobs = sa.table(
        "scheduled_jobs",
        sa.column("id", sa.Uuid()),
        sa.column("tenant_id", sa.Uuid()),
        sa.column("kind", sa.String()),
        sa.column("key", sa.String()),
        sa.column("due_at", casedesk.store.types.UTCDateTime()),
        sa.column("payload", sa.JSON()),
        sa.column("traceparent", sa.String()),
        sa.column("status", sa.String()),
        sa.column("attempts", sa.Integer()),
        sa.column("created_at", casedesk.store.types.UTCDateTime()),
        sa.column("updated_at", casedesk.store.types.UTCDateTime()),
    )
    now = datetime.now(UTC)
    connection.execute(
        jobs.insert(),
        [
            {
                "id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "kind": "search.reindex",
                "key": f"search.reindex:{tenant_id}",
                "due_at": now,
                "payload": {},
                "traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for tenant_id in tenants
        ],
    )
    return len(tenants)


def downgrade() -> None:
    op.execute("DELETE FROM scheduled_jobs WHERE kind = 'search.reindex'")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table("search_documents")  # its indexes with it

"""search: a document per case, its text as the engines' tokens, and each database's own
full-text index over them

Revision ID: 0034
Revises: 0033
"""

from collections.abc import Sequence

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
# stopwords), generated from the two columns, each under a GIN index.
POSTGRESQL = (
    "ALTER TABLE search_documents ADD COLUMN public_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple', public_tokens)) STORED",
    "ALTER TABLE search_documents ADD COLUMN internal_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple', internal_tokens)) STORED",
    "CREATE INDEX ix_search_documents_public_vector ON search_documents USING gin (public_vector)",
    "CREATE INDEX ix_search_documents_internal_vector ON search_documents "
    "USING gin (internal_vector)",
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


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table("search_documents")  # its indexes with it

"""The search index in the database: documents written by the indexer, and each database's own
full-text engine over their tokens (built by migration 0034).

- SQLite: the FTS5 table ``search_fts`` over the documents' rows, ``bm25`` ranking;
- PostgreSQL: the ``public_vector`` and ``internal_vector`` ``tsvector`` columns (``simple``
  configuration, GIN indexes), ``phraseto_tsquery`` phrases, ``ts_rank_cd`` ranking;
- MariaDB: InnoDB ``FULLTEXT`` indexes, ``MATCH … AGAINST`` in boolean mode.

Every text term is a phrase of tokens (``domain.search.tokens``): a word is the phrase of its
tokens, so each engine looks for the same thing. What matches is a set of case ids of the
tenant, with a score (higher is better) when there is something to rank by; the case list joins
it and filters the cases themselves, so the field terms are never behind the index.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from typing import Any, Protocol, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    column,
    func,
    literal_column,
    not_,
    or_,
    select,
    table,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.kit.clock import utcnow
from casedesk.store.dialects import insert_if_new
from casedesk.store.models import (
    Case,
    Comment,
    Customer,
    OutboxEvent,
    ProcessedEvent,
    SearchDocument,
)
from casedesk.store.tenancy import bound_tenant

documents = cast(Table, SearchDocument.__table__)
cases = cast(Table, Case.__table__)
customers = cast(Table, Customer.__table__)
ENGINE_TABLES = frozenset(
    {"search_fts", "search_fts_data", "search_fts_idx", "search_fts_docsize", "search_fts_config"}
)
"""SQLite's FTS5 table and its shadow tables: the migration's, not the mapped schema's."""
ENGINE_COLUMNS = frozenset({"public_vector", "internal_vector"})
"""PostgreSQL's generated ``tsvector`` columns: the migration's, not the mapped schema's."""
ENGINE_INDEXES = frozenset(
    {
        "ix_search_documents_public_vector",
        "ix_search_documents_internal_vector",
        "ft_search_documents_public",
        "ft_search_documents_all",
    }
)


def engine_object(name: str | None, kind: str) -> bool:
    """Whether a schema object is a full-text engine's (made by migration 0034 in each
    database's own terms) rather than a mapped one; a schema comparison leaves it out."""
    if kind == "table":
        return name in ENGINE_TABLES
    if kind == "column":
        return name in ENGINE_COLUMNS
    return kind == "index" and name in ENGINE_INDEXES


@dataclass(frozen=True, slots=True)
class Phrase:
    tokens: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class TextMatch:
    """What the text of a query asks of the index: every phrase not negated is in the
    document, none of the negated ones is; ``internal``: internal notes count."""

    phrases: tuple[Phrase, ...]
    internal: bool

    @property
    def wanted(self) -> tuple[Phrase, ...]:
        return tuple(p for p in self.phrases if not p.negated)

    @property
    def unwanted(self) -> tuple[Phrase, ...]:
        return tuple(p for p in self.phrases if p.negated)


@dataclass(frozen=True, slots=True)
class Hits:
    """The index's answer as parts of the case list's statement."""

    matched: Select[Any] | None
    """A select of ``case_id``, ``doc_id`` (newer documents have higher ones) and ``score``
    (higher is better), or None."""
    excluded: Any | None
    """A subquery of the ``case_id`` of the cases to leave out, or None."""


_TENANT: BindParameter[uuid.UUID] = bindparam("tenant_id")
_fts = table("search_fts", column("rowid"), column("public_tokens"), column("search_fts"))


def hits(dialect: str, match: TextMatch) -> Hits:
    """The subqueries finding ``match`` in the tenant's documents (bound as ``tenant_id``)."""
    wanted, unwanted = match.wanted, match.unwanted
    engines: dict[str, type[_Engine]] = {"sqlite": _Fts5, "postgresql": _Tsvector}
    engine = engines.get(dialect, _Fulltext)(match.internal)
    if wanted:
        return Hits(engine.matching(wanted, unwanted), None)
    if unwanted:
        return Hits(None, engine.any_of(unwanted))
    return Hits(None, None)


class _Engine(Protocol):
    def __init__(self, internal: bool) -> None: ...

    def matching(self, wanted: Sequence[Phrase], unwanted: Sequence[Phrase]) -> Any: ...

    def any_of(self, phrases: Sequence[Phrase]) -> Any: ...


class _Fts5:
    """SQLite FTS5: a MATCH expression of quoted phrases, ``bm25`` (lower is better)."""

    def __init__(self, internal: bool) -> None:
        self.column = "" if internal else "public_tokens : "

    def _phrase(self, phrase: Phrase) -> str:
        return self.column + '"' + " ".join(phrase.tokens) + '"'

    def _select(self, expression: str, *, scored: bool) -> Select[Any]:
        score = [(-func.bm25(literal_column("search_fts"))).label("score")] if scored else []
        newest = [_fts.c.rowid.label("doc_id")] if scored else []
        return (
            select(documents.c.case_id.label("case_id"), *newest, *score)
            .select_from(_fts)
            .join(documents, documents.c.id == _fts.c.rowid)
            .where(text("search_fts MATCH :fts_match").bindparams(fts_match=expression))
            .where(documents.c.tenant_id == _TENANT)
        )

    def matching(self, wanted: Sequence[Phrase], unwanted: Sequence[Phrase]) -> Any:
        expression = " AND ".join(self._phrase(p) for p in wanted)
        if unwanted:
            expression = f"({expression}) NOT ({' OR '.join(self._phrase(p) for p in unwanted)})"
        return self._select(expression, scored=True)

    def any_of(self, phrases: Sequence[Phrase]) -> Any:
        return self._select(" OR ".join(self._phrase(p) for p in phrases), scored=False)


class _Tsvector:
    """PostgreSQL: ``phraseto_tsquery('simple', …)`` of each phrase against the columns'
    ``tsvector``; a phrase is found in the public text or (when they count) the internal
    notes, and ranked by ``ts_rank_cd``."""

    _public: Any = literal_column("search_documents.public_vector")
    _internal: Any = literal_column("search_documents.internal_vector")

    def __init__(self, internal: bool) -> None:
        self.internal = internal

    @staticmethod
    def _query(phrase: Phrase) -> Any:
        return func.phraseto_tsquery(literal_column("'simple'::regconfig"), " ".join(phrase.tokens))

    def _found(self, phrase: Phrase) -> ColumnElement[bool]:
        query = self._query(phrase)
        public: ColumnElement[bool] = self._public.op("@@")(query)
        return or_(public, self._internal.op("@@")(query)) if self.internal else public

    def matching(self, wanted: Sequence[Phrase], unwanted: Sequence[Phrase]) -> Any:
        conditions = [self._found(p) for p in wanted] + [not_(self._found(p)) for p in unwanted]
        query = reduce(lambda a, b: func.tsquery_and(a, b), [self._query(p) for p in wanted])
        score: Any = func.ts_rank_cd(self._public, query)
        if self.internal:
            score = score + func.ts_rank_cd(self._internal, query) / 2
        return select(
            documents.c.case_id.label("case_id"),
            documents.c.id.label("doc_id"),
            score.label("score"),
        ).where(documents.c.tenant_id == _TENANT, and_(*conditions))

    def any_of(self, phrases: Sequence[Phrase]) -> Any:
        return select(documents.c.case_id).where(
            documents.c.tenant_id == _TENANT, or_(*(self._found(p) for p in phrases))
        )


class _Fulltext:
    """MariaDB: ``MATCH (…) AGAINST (… IN BOOLEAN MODE)`` over the public tokens, or both
    columns (an index each); its score ranks."""

    def __init__(self, internal: bool) -> None:
        columns = "public_tokens, internal_tokens" if internal else "public_tokens"
        self.columns = f"search_documents.{columns.replace(', ', ', search_documents.')}"

    @staticmethod
    def _phrase(phrase: Phrase, sign: str) -> str:
        return sign + '"' + " ".join(phrase.tokens) + '"'

    def _against(self, expression: str) -> Any:
        # Written into the statement, not bound: the score in the select list and the
        # condition are then the same expression, which MariaDB evaluates once.
        return literal_column(
            f"MATCH ({self.columns}) AGAINST ({_quoted(expression)} IN BOOLEAN MODE)"
        )

    def matching(self, wanted: Sequence[Phrase], unwanted: Sequence[Phrase]) -> Any:
        expression = " ".join(
            [self._phrase(p, "+") for p in wanted] + [self._phrase(p, "-") for p in unwanted]
        )
        score = self._against(expression)
        return select(
            documents.c.case_id.label("case_id"),
            documents.c.id.label("doc_id"),
            score.label("score"),
        ).where(documents.c.tenant_id == _TENANT, score)

    def any_of(self, phrases: Sequence[Phrase]) -> Any:
        expression = " ".join(self._phrase(p, "") for p in phrases)
        return select(documents.c.case_id).where(
            documents.c.tenant_id == _TENANT, self._against(expression)
        )


def _quoted(value: str) -> str:
    """A string literal of MariaDB for an expression of tokens (letters, digits, spaces,
    quotes and signs only: the tokenizer writes nothing else)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


class SearchRepository:
    """The tenant's search documents."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _tenant(self) -> uuid.UUID:
        tenant_id = bound_tenant(self.session.sync_session)
        if tenant_id is None:
            raise LookupError("search documents need a session bound to a tenant")
        return tenant_id

    async def write(
        self, case_id: uuid.UUID, public_tokens: str, internal_tokens: str, *, position: int
    ) -> bool:
        """Keep the case's document made for the event at ``position``, unless the one kept
        was made for a later event; True when this one is kept. A concurrent writer of the
        same case makes this one wait for its outcome and then compare positions."""
        values = self._values(public_tokens, internal_tokens, position)
        newer = documents.c.position <= position
        if await self._update(case_id, values, newer):
            return True
        if await self._insert(case_id, values):
            return True
        return await self._update(case_id, values, newer)

    async def rebuild(
        self, case_id: uuid.UUID, public_tokens: str, internal_tokens: str, *, read: int | None
    ) -> bool:
        """Keep a document rebuilt beside the indexer (``casedesk search reindex``): ``read``
        is the position of the document kept when the rows were read (None: there was none).
        It is written only over that same document, so one the indexer wrote meanwhile, from
        rows at least as new, stands; True when it was written."""
        if read is None:
            return await self._insert(case_id, self._values(public_tokens, internal_tokens, 0))
        values = self._values(public_tokens, internal_tokens, read)
        return await self._update(case_id, values, documents.c.position == read)

    @staticmethod
    def _values(public_tokens: str, internal_tokens: str, position: int) -> dict[str, Any]:
        return {
            "public_tokens": public_tokens,
            "internal_tokens": internal_tokens,
            "position": position,
            "indexed_at": utcnow(),
        }

    async def _insert(self, case_id: uuid.UUID, values: dict[str, Any]) -> bool:
        row = {**values, "case_id": case_id, "tenant_id": self._tenant()}
        return await insert_if_new(self.session, SearchDocument, row)

    async def _update(
        self, case_id: uuid.UUID, values: dict[str, Any], condition: ColumnElement[bool]
    ) -> bool:
        connection = await self.session.connection()
        result = await connection.execute(
            update(documents).where(documents.c.case_id == case_id, condition).values(values)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def positions(self, case_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        connection = await self.session.connection()
        result = await connection.execute(
            select(documents.c.case_id, documents.c.position, documents.c.tenant_id).where(
                documents.c.case_id.in_(case_ids)  # by the case index (see ``texts_of``)
            )
        )
        tenant_id = self._tenant()
        return {row.case_id: row.position for row in result if row.tenant_id == tenant_id}


# --- the field terms, on the cases themselves -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Compared:
    """``column comparison value``; negated: not so."""

    column: str
    comparison: str
    value: Any
    negated: bool = False


@dataclass(frozen=True, slots=True)
class CaseTerms:
    """A query's field terms with names resolved to ids: conditions on the case's own row.

    The ``*_any`` values are any of (a case has one), ``*_none`` none of; ``tags`` must all be
    on the case, ``untagged`` none; each of ``customers`` is a pattern the case's customer's
    name or address holds (all of them), ``not_customers`` patterns it does not."""

    numbers_any: tuple[int, ...] = ()
    numbers_none: tuple[int, ...] = ()
    states_any: tuple[str, ...] = ()
    states_none: tuple[str, ...] = ()
    queues_any: tuple[uuid.UUID, ...] = ()
    queues_none: tuple[uuid.UUID, ...] = ()
    channels_any: tuple[str, ...] = ()
    channels_none: tuple[str, ...] = ()
    assignees_any: tuple[uuid.UUID | None, ...] = ()
    assignees_none: tuple[uuid.UUID | None, ...] = ()
    tags: tuple[str, ...] = ()
    untagged: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()
    not_customers: tuple[str, ...] = ()
    compared: tuple[Compared, ...] = ()
    """priority (its rank), created_at and updated_at against a value."""


def _any_of(column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    present = [v for v in values if v is not None]
    found: list[ColumnElement[bool]] = [column.in_(present)] if present else []
    if len(present) < len(values):
        found.append(column.is_(None))
    return or_(*found)


def _has_tag(dialect: str, tag: str) -> ColumnElement[bool]:
    """The case has ``tag``, whatever the case of its Latin letters (the JSON text of its tags
    lowered, which keeps it JSON)."""
    if dialect == "sqlite":
        each = func.json_each(func.lower(cases.c.tags)).table_valued("value")
        return select(each.c.value).where(each.c.value == func.lower(tag)).exists()
    if dialect == "postgresql":
        held: ColumnElement[bool] = literal_column(
            "CAST(lower(CAST(cases.tags AS text)) AS jsonb)"
        ).op("@>")(func.jsonb_build_array(func.lower(tag)))
        return held
    lowered = func.json_contains(func.lower(cases.c.tags), func.json_quote(func.lower(tag)))
    return lowered == 1


def _customer_like(pattern: str) -> ColumnElement[bool]:
    like = "%" + pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = or_(
        func.lower(customers.c.email).like(like, escape="\\"),
        func.lower(customers.c.name).like(like, escape="\\"),
    )
    return cases.c.customer_id.in_(
        select(customers.c.id).where(customers.c.tenant_id == _TENANT, found)
    )


_COMPARISONS = {
    "=": lambda c, v: c == v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    "within": lambda c, v: and_(c >= v[0], c < v[1]),
}


def term_conditions(dialect: str, terms: CaseTerms) -> list[ColumnElement[bool]]:
    """The conditions on ``cases`` the terms make."""
    found: list[ColumnElement[bool]] = []
    pairs: tuple[tuple[Any, Sequence[Any], Sequence[Any]], ...] = (
        (cases.c.number, terms.numbers_any, terms.numbers_none),
        (cases.c.state, terms.states_any, terms.states_none),
        (cases.c.queue_id, terms.queues_any, terms.queues_none),
        (cases.c.channel, terms.channels_any, terms.channels_none),
        (cases.c.assignee_id, terms.assignees_any, terms.assignees_none),
    )
    for column_, wanted, unwanted in pairs:
        if wanted:
            found.append(_any_of(column_, wanted))
        if unwanted:
            found.append(not_(_any_of(column_, unwanted)))
            if None not in unwanted and column_ is cases.c.assignee_id:
                found[-1] = or_(found[-1], column_.is_(None))
    found += [_has_tag(dialect, tag) for tag in terms.tags]
    found += [not_(_has_tag(dialect, tag)) for tag in terms.untagged]
    found += [_customer_like(pattern) for pattern in terms.customers]
    found += [
        or_(cases.c.customer_id.is_(None), not_(_customer_like(pattern)))
        for pattern in terms.not_customers
    ]
    for term in terms.compared:
        compare: Any = _COMPARISONS[term.comparison]
        condition = compare(cases.c[term.column], term.value)
        found.append(not_(condition) if term.negated else condition)
    return found


# --- the case list narrowed by a search -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Narrowing:
    """A search as the case list applies it: the text for the index, the field terms."""

    text: TextMatch | None
    terms: CaseTerms

    @property
    def ranked(self) -> bool:
        return self.text is not None and bool(self.text.wanted)


RELEVANCE = "relevance"
MAX_OFFSET = 10_000
"""How deep a list by relevance pages: past it, a narrower query finds more."""


RANKED_AT_MOST = 1_000
"""Matches a list ranks by score: a search found in more cases lists the newest first.

Scoring means reading every match (SQLite's ``bm25`` and PostgreSQL's ``ts_rank_cd`` are
computed for each one: at 30,000 matches 45 ms on SQLite and 100 to 200 ms on PostgreSQL,
and still 21 ms on PostgreSQL at 2,000), while the newest matches come
straight from the index in its order; and among tens of thousands of cases with a common word
the scores say little. The list is complete either way: only its order differs."""


@dataclass(frozen=True, slots=True)
class Narrowed:
    statement: Select[Any]
    matched: Select[Any] | None
    """The text's matches (see ``Hits.matched``), when there are words to find."""
    score: Any | None
    newest: Any | None


def narrow(statement: Select[Any], dialect: str, narrowing: Narrowing) -> Narrowed:
    """``statement`` over ``cases`` with the search's conditions (its tenant bound as
    ``tenant_id``), and what to order it by relevance with."""
    statement = statement.where(*term_conditions(dialect, narrowing.terms))
    if narrowing.text is None:
        return Narrowed(statement, None, None, None)
    found = hits(dialect, narrowing.text)
    score = newest = None
    if found.matched is not None:
        matched = found.matched.subquery("hits")
        statement = statement.join(matched, matched.c.case_id == cases.c.id)
        score, newest = matched.c.score, matched.c.doc_id
    if found.excluded is not None:
        statement = statement.where(cases.c.id.not_in(found.excluded))
    return Narrowed(statement, found.matched, score, newest)


def relevance_order(narrowed: Narrowed, matches: int) -> tuple[str, list[Any]]:
    """How a list by relevance is ordered when the words have ``matches`` matches (counted
    to ``RANKED_AT_MOST + 1``): by score, or the newest first; and the order's columns."""
    assert narrowed.newest is not None
    assert narrowed.score is not None
    if matches > RANKED_AT_MOST:
        return "newest", [narrowed.newest.desc()]
    return RELEVANCE, [narrowed.score.desc(), cases.c.id.desc()]


def counting_matches(narrowed: Narrowed) -> Select[Any]:
    """The statement counting the words' matches in the tenant, to ``RANKED_AT_MOST + 1``."""
    assert narrowed.matched is not None
    first: Select[Any] = narrowed.matched.with_only_columns(literal_column("1")).limit(
        RANKED_AT_MOST + 1
    )
    return select(func.count()).select_from(first.subquery())


# --- what the list shows of a match, and how far the index is behind -------------------------

LAG_WINDOW = 1000
"""The newest events of a tenant the lag is counted over: more behind is "at least"."""


async def texts_of(
    session: AsyncSession, case_ids: Sequence[uuid.UUID], *, internal: bool, comments: int = 50
) -> dict[uuid.UUID, list[tuple[str, str]]]:
    """The searched text of each case, as (field, text): its description, then its first
    ``comments`` comments (public ones only unless ``internal``)."""
    if not case_ids:
        return {}
    tenant_id = bound_tenant(session.sync_session)
    connection = await session.connection()
    found: dict[uuid.UUID, list[tuple[str, str]]] = {case_id: [] for case_id in case_ids}
    described = await connection.execute(
        select(cases.c.id, cases.c.description).where(
            cases.c.tenant_id == tenant_id, cases.c.id.in_(case_ids)
        )
    )
    mine = []
    for row in described:
        mine.append(row.id)
        if row.description:
            found[row.id].append(("description", row.description))
    if not mine:
        return found
    table_ = Comment.__table__
    ranked = (
        select(
            table_.c.case_id,
            table_.c.body,
            table_.c.public,
            func.row_number()
            .over(partition_by=table_.c.case_id, order_by=table_.c.id)
            .label("place"),
        )
        .where(
            # The tenant's cases (found above): no tenant condition, or a planner may read
            # every comment of the tenant by its tenant index rather than these by their case.
            table_.c.case_id.in_(mine),
            table_.c.deleted_at.is_(None),
            *(() if internal else (table_.c.public.is_(True),)),
        )
        .subquery()
    )
    rows = await connection.execute(
        select(ranked.c.case_id, ranked.c.body, ranked.c.public).where(ranked.c.place <= comments)
    )
    for comment in rows:
        kind = "comment" if comment.public else "internal_note"
        found[comment.case_id].append((kind, comment.body))
    return found


async def lag(
    session: AsyncSession, group: str, types: Sequence[str], *, now: datetime
) -> tuple[int, float]:
    """How far the ``group`` consumer is behind in the session's tenant (every tenant's for
    a session bound to none): of the newest ``LAG_WINDOW`` events of ``types``, how many it
    has not handled, and the age in seconds of the oldest of those (0 when up to date)."""
    outbox, processed = OutboxEvent.__table__, ProcessedEvent.__table__
    tenant_id = bound_tenant(session.sync_session)
    newest = select(outbox.c.event_id, outbox.c.time).where(outbox.c.type.in_(types))
    if tenant_id is not None:
        newest = newest.where(outbox.c.tenant_id == tenant_id)
    recent = newest.order_by(outbox.c.id.desc()).limit(LAG_WINDOW).subquery()
    handled = (
        select(processed.c.event_id)
        .where(
            processed.c.consumer_group == group,
            processed.c.event_id == recent.c.event_id,
        )
        .exists()
    )
    connection = await session.connection()
    row = (
        await connection.execute(select(func.count(), func.min(recent.c.time)).where(~handled))
    ).one()
    count, oldest = int(row[0] or 0), row[1]
    if not count or oldest is None:
        return 0, 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return count, max(0.0, (now - oldest).total_seconds())


# --- what a document is made from -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceRows:
    """The rows a case's document is made from."""

    case: Any
    """number, title, description, tags, form, customer_name, customer_email"""
    comments: list[tuple[bool, str]]
    """(public, body) of its comments not deleted, oldest first."""


async def source_rows(
    session: AsyncSession, case_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, SourceRows]:
    """The cases' rows and their comments, in two statements."""
    if not case_ids:
        return {}
    tenant_id = bound_tenant(session.sync_session)
    connection = await session.connection()
    found = await connection.execute(
        select(
            cases.c.id,
            cases.c.number,
            cases.c.title,
            cases.c.description,
            cases.c.tags,
            cases.c.form,
            customers.c.name.label("customer_name"),
            customers.c.email.label("customer_email"),
        )
        .outerjoin(customers, customers.c.id == cases.c.customer_id)
        .where(cases.c.tenant_id == tenant_id, cases.c.id.in_(case_ids))
    )
    rows = {row.id: SourceRows(row, []) for row in found}
    if not rows:
        return rows
    comments = Comment.__table__
    written = await connection.execute(
        select(comments.c.case_id, comments.c.public, comments.c.body)
        .where(
            # The tenant's cases (found above), by their case index alone (see ``texts_of``).
            comments.c.case_id.in_(list(rows)),
            comments.c.deleted_at.is_(None),
        )
        .order_by(comments.c.id)
    )
    for row in written:
        rows[row.case_id].comments.append((bool(row.public), row.body))
    return rows


async def refresh_statistics(session: AsyncSession) -> None:
    """Tell the database's planner what the documents are now (after a rebuild wrote many):
    without it PostgreSQL plans a search over 100,000 new documents as over a few thousand."""
    connection = await session.connection()
    dialect = connection.dialect.name
    statement = {
        "postgresql": "ANALYZE search_documents",
        "sqlite": "ANALYZE search_documents",
    }.get(dialect, "ANALYZE TABLE search_documents")
    await connection.execute(text(statement))

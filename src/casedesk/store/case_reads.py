"""The reads of the case detail and the case list, as Core statements over plain columns.

Reads build no ORM objects: rows come back as tuples and are shaped into the response by
``domain.cases.reads``. These statements bypass the session's tenant guard, so each one
names the tenant itself (``tenant_id`` of the unit of work), on the case it starts from;
every other row it reads hangs off that case (its template, queue, customer, tasks,
comments, clocks).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Row,
    Select,
    and_,
    bindparam,
    exists,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from casedesk.kit.errors import InvalidInput
from casedesk.store.cases import CURSORS, SORTS, CaseFilter, RelevancePage
from casedesk.store.models import Case as CaseModel
from casedesk.store.models import CaseSla, Comment, Customer, Queue, Task, Template
from casedesk.store.repository import id_cursors
from casedesk.store.search import (
    RELEVANCE,
    Narrowing,
    counting_matches,
    narrow,
    relevance_order,
)
from casedesk.store.tenancy import bound_tenant

cases = CaseModel.__table__
_templates, _queues, _customers = Template.__table__, Queue.__table__, Customer.__table__
_tasks, _comments, _clocks = Task.__table__, Comment.__table__, CaseSla.__table__

SUMMARY_COLUMNS = (
    cases.c.id,
    cases.c.number,
    cases.c.title,
    cases.c.state,
    cases.c.closed,
    cases.c.priority,
    cases.c.queue_id,
    cases.c.assignee_id,
    cases.c.customer_id,
    cases.c.template_id,
    cases.c.channel,
    cases.c.external_ref,
    cases.c.parent_id,
    cases.c.tags,
    cases.c.version,
    cases.c.created_at,
    cases.c.updated_at,
    cases.c.state_entered_at,
    cases.c.closed_at,
)
"""The columns of a case in a list, in the order of ``CaseSummary``."""

DETAIL_COLUMNS = (
    *SUMMARY_COLUMNS,
    cases.c.machine_version_id,
    cases.c.description,
    cases.c.form,
    cases.c.rating_score,
    cases.c.rating_comment,
    cases.c.rated_at,
)
TASK_COLUMNS = (
    _tasks.c.id,
    _tasks.c.queue_id,
    _tasks.c.assignee_id,
    _tasks.c.status,
    _tasks.c.created_at,
    _tasks.c.accepted_at,
    _tasks.c.done_at,
)
COMMENT_COLUMNS = (
    _comments.c.id,
    _comments.c.body,
    _comments.c.public,
    _comments.c.author_type,
    _comments.c.author_id,
    _comments.c.author_name,
    _comments.c.channel,
    _comments.c.external_id,
    _comments.c.thread_id,
    _comments.c.delivery_status,
    _comments.c.delivered_id,
    _comments.c.delivery_error,
    _comments.c.delivery_attempts,
    _comments.c.attachment_count,
    _comments.c.edited_at,
    _comments.c.deleted_at,
    _comments.c.created_at,
)
CLOCK_COLUMNS = (
    _clocks.c.metric,
    _clocks.c.status,
    _clocks.c.target_at,
    _clocks.c.warned,
    _clocks.c.met_at,
    _clocks.c.breached_at,
    _clocks.c.remaining_seconds,
)

_CASE_ID: BindParameter[uuid.UUID] = bindparam("case_id")
_TENANT_ID: BindParameter[uuid.UUID] = bindparam("tenant_id")
_DETAIL = (
    select(
        *DETAIL_COLUMNS,
        _templates.c.code.label("template_code"),
        _queues.c.code.label("queue_code"),
        _customers.c.email.label("customer_email"),
        _customers.c.name.label("customer_name"),
        exists().where(_comments.c.case_id == cases.c.id).label("has_comments"),
        exists().where(_clocks.c.case_id == cases.c.id).label("has_clocks"),
        *(column.label(f"task_{column.key}") for column in TASK_COLUMNS),
    )
    .select_from(
        cases.join(_templates, _templates.c.id == cases.c.template_id)
        .join(_queues, _queues.c.id == cases.c.queue_id)
        .outerjoin(_customers, _customers.c.id == cases.c.customer_id)
        .outerjoin(_tasks, _tasks.c.case_id == cases.c.id)
    )
    .where(cases.c.id == _CASE_ID, cases.c.tenant_id == _TENANT_ID)
    .order_by(_tasks.c.id)
)
"""The case with its labels, its customer and its tasks (one row per task)."""

_EXISTS = select(cases.c.id).where(cases.c.id == _CASE_ID, cases.c.tenant_id == _TENANT_ID)
_NEWEST_COMMENTS = (
    select(*COMMENT_COLUMNS)
    .where(_comments.c.case_id == _CASE_ID, _comments.c.tenant_id == _TENANT_ID)
    .order_by(_comments.c.id.desc())
    .limit(bindparam("limit"))
)
_CLOCKS = (
    select(*CLOCK_COLUMNS)
    .where(_clocks.c.case_id == _CASE_ID, _clocks.c.tenant_id == _TENANT_ID)
    .order_by(_clocks.c.metric)
)
_NEWEST_COMMENT_CURSORS = id_cursors(f"-{Comment.__tablename__}")


@dataclass(frozen=True, slots=True)
class DetailRows:
    case: Row[Any]
    """the case's columns, its labels and customer, and its first task"""
    tasks: list[Row[Any]]
    """one row per task, ``task_*`` columns (none when the case has no task)"""
    comments: list[Row[Any]]
    """the newest comments, oldest of them first"""
    comments_next_cursor: str | None
    clocks: list[Row[Any]]


@dataclass(frozen=True, slots=True)
class SummaryPage:
    rows: Sequence[Row[Any]]
    next_cursor: str | None
    ordered_by: str | None = None
    """By relevance: ``relevance``, or ``newest`` when the words match too many cases."""


class CaseReads:
    """The read statements of one unit of work's session, in its tenant."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        tenant_id = bound_tenant(session.sync_session)
        if tenant_id is None:
            raise LookupError("case reads need a session bound to a tenant")
        self.tenant_id: uuid.UUID = tenant_id

    async def _rows(self, statement: Select[Any], **parameters: Any) -> Sequence[Row[Any]]:
        connection = await self.session.connection()
        result = await connection.execute(statement, {"tenant_id": self.tenant_id, **parameters})
        rows: Sequence[Row[Any]] = result.all()
        return rows

    async def exists(self, case_id: uuid.UUID) -> bool:
        return bool(await self._rows(_EXISTS, case_id=case_id))

    async def detail(self, case_id: uuid.UUID, *, comments: int) -> DetailRows | None:
        """The case and what its detail shows, or None when the tenant has no such case: one
        statement, plus one for its newest ``comments`` and one for its SLA clocks when it
        has any."""
        rows = await self._rows(_DETAIL, case_id=case_id)
        if not rows:
            return None
        first = rows[0]
        tasks = [row for row in rows if row.task_id is not None]
        newest: Sequence[Row[Any]] = []
        if first.has_comments:
            newest = await self._rows(_NEWEST_COMMENTS, case_id=case_id, limit=comments + 1)
        next_cursor = None
        if len(newest) > comments:
            newest = newest[:comments]
            next_cursor = _NEWEST_COMMENT_CURSORS.encode((newest[-1].id,))
        clocks = list(await self._rows(_CLOCKS, case_id=case_id)) if first.has_clocks else []
        return DetailRows(first, tasks, list(reversed(newest)), next_cursor, clocks)

    async def page(
        self,
        where: CaseFilter,
        *,
        queue: str | None,
        template: str | None,
        sort: str,
        limit: int,
        cursor: str | None,
        narrowing: Narrowing | None = None,
    ) -> SummaryPage:
        """A page of the list in one statement: the queue and template are named by their
        codes and found inside it. An empty page for a code the tenant does not have is a
        422 naming it (one more statement, only then). A search narrows it (``narrowing``),
        and may order it by relevance."""
        statement: Select[Any] = select(*SUMMARY_COLUMNS).where(
            cases.c.tenant_id == _TENANT_ID, *_conditions(where)
        )
        parameters: dict[str, Any] = {}
        if queue is not None:
            statement = statement.where(cases.c.queue_id == _code_of(_queues, "queue_code"))
            parameters["queue_code"] = queue
        if template is not None:
            statement = statement.where(
                cases.c.template_id == _code_of(_templates, "template_code")
            )
            parameters["template_code"] = template
        if narrowing is not None:
            connection = await self.session.connection()
            narrowed = narrow(statement, connection.dialect.name, narrowing)
            statement = narrowed.statement
            if sort == RELEVANCE:
                counted = await self._rows(counting_matches(narrowed))
                ordered_by, ranking = relevance_order(narrowed, int(counted[0][0]))
                page = await self._by_relevance(
                    statement, ranking, parameters, queue, template, limit=limit, cursor=cursor
                )
                return replace(page, ordered_by=ordered_by)
        if sort not in SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(SORTS)}", field="sort")
        column, descending = _SORT_COLUMNS[sort.lstrip("-")], sort.startswith("-")
        codec = CURSORS[sort]
        if cursor is not None:
            *value, last_id = codec.decode(cursor)
            statement = statement.where(_after(column, value, last_id, descending))
        order: list[Any] = (
            [column.desc(), cases.c.id.desc()] if descending else [column, cases.c.id]
        )
        if column is cases.c.id:
            order = order[:1]
        rows = await self._rows(statement.order_by(*order).limit(limit + 1), **parameters)
        if not rows:
            await self.check_codes(queue, template)
        items = rows[:limit]
        next_cursor = None
        if len(rows) > limit and items:
            last = items[-1]
            key = (last.id,) if column is cases.c.id else (getattr(last, column.key), last.id)
            next_cursor = codec.encode(key)
        return SummaryPage(items, next_cursor)

    async def _by_relevance(
        self,
        statement: Select[Any],
        order: list[Any],
        parameters: dict[str, Any],
        queue: str | None,
        template: str | None,
        *,
        limit: int,
        cursor: str | None,
    ) -> SummaryPage:
        page = RelevancePage.at(cursor, limit)
        rows = await self._rows(page.ordered(statement, order), **parameters)
        if not rows:
            await self.check_codes(queue, template)
        return SummaryPage(rows[:limit], page.next_cursor(len(rows)))

    async def check_codes(self, queue: str | None, template: str | None) -> None:
        """A 422 naming the queue or template code the tenant does not have."""
        for table, code, field in ((_queues, queue, "queue"), (_templates, template, "template")):
            if code is None:
                continue
            found = select(table.c.id).where(
                table.c.tenant_id == _TENANT_ID, table.c.code == bindparam("code")
            )
            if not await self._rows(found, code=code):
                raise InvalidInput(f"no {field} {code!r}", field=field)


def _code_of(table: Any, parameter: str) -> Any:
    """The id of the tenant's row of ``table`` with the code bound as ``parameter``."""
    return (
        select(table.c.id)
        .where(table.c.tenant_id == _TENANT_ID, table.c.code == bindparam(parameter))
        .scalar_subquery()
    )


_SORT_COLUMNS = {
    "created": cases.c.id,
    "updated": cases.c.updated_at,
    "priority": cases.c.priority,
    "number": cases.c.number,
}


def _conditions(where: CaseFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    equalities = {
        cases.c.state: where.state,
        cases.c.closed: where.closed,
        cases.c.queue_id: where.queue_id,
        cases.c.assignee_id: where.assignee_id,
        cases.c.template_id: where.template_id,
        cases.c.priority: where.priority,
        cases.c.customer_id: where.customer_id,
    }
    conditions += [column == value for column, value in equalities.items() if value is not None]
    if where.created_after is not None:
        conditions.append(cases.c.created_at >= where.created_after)
    if where.created_before is not None:
        conditions.append(cases.c.created_at < where.created_before)
    if where.unassigned is not None:
        unassigned = cases.c.assignee_id.is_(None)
        conditions.append(unassigned if where.unassigned else cases.c.assignee_id.is_not(None))
    if where.queue_ids is not None:
        conditions.append(cases.c.queue_id.in_(sorted(where.queue_ids)))
    if where.states is not None:
        conditions.append(cases.c.state.in_(sorted(where.states)))
    if where.sla_due_before is not None:
        due = select(_clocks.c.case_id).where(
            _clocks.c.tenant_id == _TENANT_ID,
            _clocks.c.status == "running",
            _clocks.c.target_at < where.sla_due_before,
        )
        conditions.append(cases.c.id.in_(due))
    return conditions


def _after(
    column: Any, key: list[Any], last_id: uuid.UUID, descending: bool
) -> ColumnElement[bool]:
    """Rows after the cursor's: ``key`` is the sort value (empty when sorting by id)."""
    if not key:
        return cases.c.id < last_id if descending else cases.c.id > last_id
    (value,) = key
    if descending:
        return or_(column < value, and_(column == value, cases.c.id < last_id))
    return or_(column > value, and_(column == value, cases.c.id > last_id))

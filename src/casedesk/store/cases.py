"""Repositories of cases and their parts: customers, tasks, comments and action records."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, cast

from pydantic import Field
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Select,
    Table,
    and_,
    func,
    insert,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from casedesk.kit.cursors import CursorCodec
from casedesk.kit.errors import InvalidInput, NotFound
from casedesk.kit.values import Instant, PositiveInt64
from casedesk.store.dialects import insert_if_new
from casedesk.store.models import (
    ActionRecord,
    Case,
    CaseCounter,
    CaseSla,
    ChannelMessageRecord,
    Comment,
    Customer,
    Queue,
    StateMachine,
    StateMachineVersion,
    Task,
    Template,
)
from casedesk.store.repository import Page, Repository
from casedesk.store.search import (
    MAX_OFFSET,
    RELEVANCE,
    Narrowing,
    counting_matches,
    narrow,
    relevance_order,
)
from casedesk.store.tenancy import bound_tenant
from casedesk.store.writes import insert_rows, row_of


class CustomerRepository(Repository[Customer]):
    model = Customer
    label = "customer"

    async def insert_if_new(self, customer: Customer) -> bool:
        """Insert the customer unless one has its e-mail, in one statement (a concurrent
        insert of the same e-mail waits for the other's outcome); True when it was inserted,
        and the customer is then kept in the session as a loaded row."""
        if not await insert_if_new(self.session, Customer, row_of(customer)):
            return False
        make_transient_to_detached(customer)
        self.session.add(customer)
        return True

    async def by_email(self, email: str) -> Customer | None:
        result: Customer | None = await self.session.scalar(
            select(Customer).where(Customer.email == email)
        )
        return result


@dataclass(frozen=True, slots=True)
class CaseFilter:
    state: str | None = None
    closed: bool | None = None
    queue_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    template_id: uuid.UUID | None = None
    priority: int | None = None
    customer_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    unassigned: bool | None = None
    states: frozenset[str] | None = None
    """any of these states (None: any state)"""
    queue_ids: frozenset[uuid.UUID] | None = None
    """in any of these queues (None: any queue)"""
    sla_due_before: datetime | None = None
    """a running SLA clock whose target comes before this moment (or has passed)"""


SORTS = ("-created", "created", "-updated", "updated", "-priority", "priority", "-number", "number")


def _sort_column(sort: str) -> Any:
    return {
        "created": Case.id,
        "updated": Case.updated_at,
        "priority": Case.priority,
        "number": Case.number,
    }[sort.lstrip("-")]


PriorityRank = Annotated[int, Field(ge=0, le=3)]
_SORT_KEYS: dict[str, Any] = {
    "created": tuple[uuid.UUID],
    "updated": tuple[Instant, uuid.UUID],
    "priority": tuple[PriorityRank, uuid.UUID],
    "number": tuple[PositiveInt64, uuid.UUID],
}
RELEVANCE_CURSORS: CursorCodec[tuple[int]] = CursorCodec(
    "cases:relevance", tuple[Annotated[int, Field(ge=0, le=MAX_OFFSET)]]
)
"""A list by relevance pages by its offset (scores are no key to resume from)."""


@dataclass(frozen=True, slots=True)
class RelevancePage:
    """Where a page of a list by relevance starts, and the cursor of the one after it."""

    offset: int
    limit: int

    @classmethod
    def at(cls, cursor: str | None, limit: int) -> RelevancePage:
        return cls(RELEVANCE_CURSORS.decode(cursor)[0] if cursor is not None else 0, limit)

    def ordered(self, statement: Select[Any], ranking: list[Any]) -> Select[Any]:
        """The statement of this page: ``limit + 1`` rows, to know whether more follow."""
        return statement.order_by(*ranking).offset(self.offset).limit(self.limit + 1)

    def next_cursor(self, fetched: int) -> str | None:
        following = self.offset + self.limit
        more = fetched > self.limit and following < MAX_OFFSET
        return RELEVANCE_CURSORS.encode((following,)) if more else None


CURSORS: dict[str, CursorCodec[tuple[Any, ...]]] = {
    sort: CursorCodec(f"cases:{sort}", _SORT_KEYS[sort.lstrip("-")]) for sort in SORTS
}
"""The case list's cursors, one per sort: a cursor of one sort is refused by another."""


@dataclass(frozen=True, slots=True)
class NewCaseSetting:
    """What a new case of a template starts from, read in one query."""

    template: Template
    queue: Queue | None
    """the queue named, or the template's default; None when no queue has that code"""
    version_id: uuid.UUID | None
    """the latest published version of the template's machine; None when there is none"""
    customer: Customer | None
    """the customer with the e-mail given, if there is one"""


class CaseRepository(Repository[Case]):
    model = Case
    label = "case"

    async def setting_for_new_case(
        self, template_code: str, queue_code: str | None, customer_email: str | None
    ) -> NewCaseSetting | None:
        """The template, its queue (or the one named), its machine's latest published version
        and the customer of that e-mail, in one query; None when there is no such template."""
        # Joined on the template's tenant too: the rows belong together (and SQLAlchemy then
        # sees no cartesian product in a join on a constant).
        queue_on = (
            and_(Queue.code == queue_code, Queue.tenant_id == Template.tenant_id)
            if queue_code is not None
            else Queue.id == Template.default_queue_id
        )
        latest_on = and_(
            StateMachineVersion.machine_id == StateMachine.id,
            StateMachineVersion.version == StateMachine.latest_version,
        )
        customer: Any = Customer if customer_email is not None else null()
        statement = (
            select(Template, Queue, StateMachineVersion.id, customer)
            .join(StateMachine, StateMachine.id == Template.machine_id)
            .outerjoin(Queue, queue_on)
            .outerjoin(StateMachineVersion, latest_on)
            .where(Template.code == template_code)
        )
        if customer_email is not None:
            statement = statement.outerjoin(
                Customer,
                and_(Customer.email == customer_email, Customer.tenant_id == Template.tenant_id),
            )
        row = (await self.session.execute(statement)).first()
        return None if row is None else NewCaseSetting(*row)

    async def batch_after(
        self, after: uuid.UUID | None, *, closed: bool, limit: int = 500
    ) -> list[Case]:
        """The next ``limit`` open (or closed) cases in id order, for scans that page."""
        statement = select(Case).where(Case.closed.is_(closed)).order_by(Case.id).limit(limit)
        if after is not None:
            statement = statement.where(Case.id > after)
        return list((await self.session.scalars(statement)).all())

    async def take_number(self, case: Case) -> int:
        """Give a just-inserted case the tenant's next number, without counting it as a change.

        The counter row stays locked until commit, so numbers are consecutive; callers do it
        last, just before the commit, to hold that lock for as short a time as they can. On
        PostgreSQL the counter and the case are updated in one statement."""
        tenant_id = bound_tenant(self.session.sync_session)
        counters = cast(Table, CaseCounter.__table__)
        cases = cast(Table, Case.__table__)
        bump = (
            update(counters)
            .where(counters.c.tenant_id == tenant_id)
            .values(last_number=counters.c.last_number + 1)
        )
        numbered = (
            update(cases)
            .where(cases.c.id == case.id, cases.c.tenant_id == tenant_id)
            .values(updated_at=case.updated_at)
        )
        dialect = self.session.get_bind().dialect
        number: int | None
        if dialect.name == "postgresql":
            taken = bump.returning(counters.c.tenant_id, counters.c.last_number).cte("taken")
            statement = (
                numbered.where(cases.c.tenant_id == taken.c.tenant_id)
                .values(number=taken.c.last_number)
                .returning(cases.c.number)
            )
            number = await self.session.scalar(statement.add_cte(taken))
        elif dialect.update_returning:
            number = await self.session.scalar(bump.returning(counters.c.last_number))
        else:
            # MariaDB/MySQL: LAST_INSERT_ID(expr) hands the new value back with the UPDATE.
            result: CursorResult[Any] = await self.session.execute(  # type: ignore[assignment]
                bump.values(last_number=func.last_insert_id(counters.c.last_number + 1))
            )
            number = result.lastrowid if result.rowcount == 1 else None
        if number is None:
            raise LookupError(f"tenant {tenant_id} has no case counter")
        if dialect.name != "postgresql":
            await self.session.execute(numbered.values(number=number))
        set_committed_value(case, "number", int(number))
        return int(number)

    async def start_numbering(self, tenant_id: uuid.UUID) -> None:
        await self.session.execute(insert(CaseCounter).values(tenant_id=tenant_id, last_number=0))

    async def locked(self, case_id: uuid.UUID) -> Case:
        """The case, its row held until commit: serialises writers that do not change it."""
        case = await self.find_locked(case_id)
        if case is None:
            raise NotFound(f"case {case_id} not found")
        return case

    async def find_locked(self, case_id: uuid.UUID) -> Case | None:
        """The case, its row held until commit, or None if there is no such case."""
        found: Case | None = await self.session.scalar(
            select(Case).where(Case.id == case_id).with_for_update()
        )
        return found

    async def marker(self, case_id: uuid.UUID) -> str | None:
        """What changes whenever the case or its conversation does: its version and its newest
        comment (a live page asks every few seconds); None when there is no such case."""
        newest = (
            select(Comment.id)
            .where(Comment.case_id == case_id)
            .order_by(Comment.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        row = (
            await self.session.execute(select(Case.version, newest).where(Case.id == case_id))
        ).first()
        return None if row is None else f"{row[0]}.{row[1] or ''}"

    async def by_number(self, number: int) -> Case | None:
        result: Case | None = await self.session.scalar(select(Case).where(Case.number == number))
        return result

    async def children(self, parent_id: uuid.UUID, *, limit: int) -> list[Case]:
        """The cases opened as follow-ups of ``parent_id``, oldest first."""
        statement = select(Case).where(Case.parent_id == parent_id).order_by(Case.id).limit(limit)
        return list((await self.session.scalars(statement)).all())

    async def by_external_ref(self, channel: str, external_ref: str) -> Case | None:
        result: Case | None = await self.session.scalar(
            select(Case).where(Case.channel == channel, Case.external_ref == external_ref)
        )
        return result

    async def list_page(
        self,
        where: CaseFilter,
        *,
        sort: str,
        limit: int,
        cursor: str | None,
        narrowing: Narrowing | None = None,
    ) -> Page[Case]:
        statement: Select[Any] = select(Case).where(*self._conditions(where))
        if narrowing is not None:
            dialect = self.session.get_bind().dialect.name
            narrowed = narrow(statement, dialect, narrowing)
            tenant = {"tenant_id": bound_tenant(self.session.sync_session)}
            statement = narrowed.statement.params(tenant)
            if sort == RELEVANCE:
                matches = int(await self.session.scalar(counting_matches(narrowed), tenant) or 0)
                _, ranking = relevance_order(narrowed, matches)
                return await self._by_relevance(statement, ranking, limit=limit, cursor=cursor)
        if sort not in SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(SORTS)}", field="sort")
        column, descending = _sort_column(sort), sort.startswith("-")
        cursors = CURSORS[sort]
        if cursor is not None:
            *value, last_id = cursors.decode(cursor)
            statement = statement.where(_after(column, value, last_id, descending))
        order: list[Any] = [column.desc(), Case.id.desc()] if descending else [column, Case.id]
        if column is Case.id:
            order = order[:1]
        rows = list((await self.session.scalars(statement.order_by(*order).limit(limit + 1))).all())
        items = rows[:limit]
        next_cursor = None
        if len(rows) > limit and items:
            last = items[-1]
            key = (last.id,) if column is Case.id else (getattr(last, column.key), last.id)
            next_cursor = cursors.encode(key)
        return Page(items=items, next_cursor=next_cursor)

    @staticmethod
    def _conditions(where: CaseFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        equalities = {
            Case.state: where.state,
            Case.closed: where.closed,
            Case.queue_id: where.queue_id,
            Case.assignee_id: where.assignee_id,
            Case.template_id: where.template_id,
            Case.priority: where.priority,
            Case.customer_id: where.customer_id,
        }
        conditions += [column == value for column, value in equalities.items() if value is not None]
        if where.created_after is not None:
            conditions.append(Case.created_at >= where.created_after)
        if where.created_before is not None:
            conditions.append(Case.created_at < where.created_before)
        if where.unassigned is not None:
            unassigned = Case.assignee_id.is_(None)
            conditions.append(unassigned if where.unassigned else Case.assignee_id.is_not(None))
        if where.queue_ids is not None:
            conditions.append(Case.queue_id.in_(sorted(where.queue_ids)))
        if where.states is not None:
            conditions.append(Case.state.in_(sorted(where.states)))
        if where.sla_due_before is not None:
            due = select(CaseSla.case_id).where(
                CaseSla.status == "running", CaseSla.target_at < where.sla_due_before
            )
            conditions.append(Case.id.in_(due))
        return conditions

    async def _by_relevance(
        self, statement: Select[Any], order: list[Any], *, limit: int, cursor: str | None
    ) -> Page[Case]:
        page = RelevancePage.at(cursor, limit)
        rows = list((await self.session.scalars(page.ordered(statement, order))).all())
        return Page(items=rows[:limit], next_cursor=page.next_cursor(len(rows)))

    async def count(
        self, where: CaseFilter, *, cap: int = 1000, narrowing: Narrowing | None = None
    ) -> int:
        """How many cases match, counting no further than ``cap`` (a view shows "1000+")."""
        statement = select(Case.id).where(*self._conditions(where))
        if narrowing is not None:
            dialect = self.session.get_bind().dialect.name
            statement = narrow(statement, dialect, narrowing).statement
            statement = statement.params(tenant_id=bound_tenant(self.session.sync_session))
        matching = statement.limit(cap + 1).subquery()
        return int(await self.session.scalar(select(func.count()).select_from(matching)) or 0)

    async def labels(self, case: Case) -> tuple[str, str, Customer | None]:
        """The template and queue codes and the customer of a case, in one query."""
        template_code = select(Template.code).where(Template.id == case.template_id)
        queue_code = select(Queue.code).where(Queue.id == case.queue_id)
        statement = (
            select(template_code.scalar_subquery(), queue_code.scalar_subquery(), Customer)
            .outerjoin_from(Template, Customer, Customer.id == case.customer_id)
            .where(Template.id == case.template_id)
        )
        row = (await self.session.execute(statement)).one()
        return row[0], row[1], row[2]

    async def children_count(self, case_id: uuid.UUID) -> int:
        statement = select(func.count()).select_from(Case).where(Case.parent_id == case_id)
        return int(await self.session.scalar(statement) or 0)


def _after(
    column: Any, key: list[Any], last_id: uuid.UUID, descending: bool
) -> ColumnElement[bool]:
    """Rows after the cursor's: ``key`` is the sort value (empty when sorting by id)."""
    if not key:
        newer_first: ColumnElement[bool] = Case.id < last_id if descending else Case.id > last_id
        return newer_first
    (value,) = key
    if descending:
        return or_(column < value, and_(column == value, Case.id < last_id))
    return or_(column > value, and_(column == value, Case.id > last_id))


class TaskRepository(Repository[Task]):
    model = Task
    label = "task"

    async def of_case(self, case_id: uuid.UUID) -> list[Task]:
        statement = select(Task).where(Task.case_id == case_id).order_by(Task.id)
        return list((await self.session.scalars(statement)).all())


class CommentRepository(Repository[Comment]):
    model = Comment
    label = "comment"

    async def of_case(self, case_id: uuid.UUID) -> list[Comment]:
        statement = select(Comment).where(Comment.case_id == case_id).order_by(Comment.id)
        return list((await self.session.scalars(statement)).all())

    async def oldest_first(
        self, case_id: uuid.UUID, *, limit: int, cursor: str | None, public_only: bool = False
    ) -> Page[Comment]:
        statement = select(Comment).where(Comment.case_id == case_id)
        if public_only:
            statement = statement.where(Comment.public.is_(True))
        return await self.page(statement, limit=limit, cursor=cursor)

    async def newest_first(
        self, case_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> Page[Comment]:
        statement = select(Comment).where(Comment.case_id == case_id)
        return await self.page_newest_first(statement, limit=limit, cursor=cursor)


class ChannelMessageRepository(Repository[ChannelMessageRecord]):
    """The messages of channels, by which threads find their case."""

    model = ChannelMessageRecord
    label = "channel message"

    async def by_external_id(self, channel: str, external_id: str) -> ChannelMessageRecord | None:
        result: ChannelMessageRecord | None = await self.session.scalar(
            select(ChannelMessageRecord).where(
                ChannelMessageRecord.channel == channel,
                ChannelMessageRecord.external_id == external_id,
            )
        )
        return result

    async def latest_in_thread(self, channel: str, thread_id: str) -> ChannelMessageRecord | None:
        result: ChannelMessageRecord | None = await self.session.scalar(
            select(ChannelMessageRecord)
            .where(
                ChannelMessageRecord.channel == channel,
                ChannelMessageRecord.thread_id == thread_id,
            )
            .order_by(ChannelMessageRecord.id.desc())
            .limit(1)
        )
        return result

    async def by_message_keys(self, keys: Sequence[str]) -> list[ChannelMessageRecord]:
        """The messages with these Message-IDs, on any channel (a mail answered from another
        mailbox still threads)."""
        if not keys:
            return []
        statement = select(ChannelMessageRecord).where(ChannelMessageRecord.message_key.in_(keys))
        return list((await self.session.scalars(statement)).all())

    async def of_case(self, case_id: uuid.UUID) -> list[ChannelMessageRecord]:
        statement = (
            select(ChannelMessageRecord)
            .where(ChannelMessageRecord.case_id == case_id)
            .order_by(ChannelMessageRecord.id)
        )
        return list((await self.session.scalars(statement)).all())

    async def latest_inbound(self, case_id: uuid.UUID) -> ChannelMessageRecord | None:
        """The message a reply on this case answers: the latest that came in."""
        result: ChannelMessageRecord | None = await self.session.scalar(
            select(ChannelMessageRecord)
            .where(ChannelMessageRecord.case_id == case_id, ChannelMessageRecord.direction == "in")
            .order_by(ChannelMessageRecord.id.desc())
            .limit(1)
        )
        return result


class ActionRecordRepository(Repository[ActionRecord]):
    model = ActionRecord
    label = "action record"

    async def write(self, records: Sequence[ActionRecord]) -> None:
        """Insert the records now, in one statement: nothing changes them afterwards."""
        if records:
            await insert_rows(self.session, records, attach=False)

    async def history(
        self, case_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> Page[ActionRecord]:
        statement = select(ActionRecord).where(ActionRecord.case_id == case_id)
        return await self.page(statement, limit=limit, cursor=cursor)

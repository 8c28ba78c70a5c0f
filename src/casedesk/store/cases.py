"""Repositories of the ticket domain: every query on cases and their parts lives here."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import ColumnElement, Select, Table, and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value

from casedesk.kit.clock import utcnow
from casedesk.kit.errors import InvalidInput, NotFound
from casedesk.store.models import (
    ActionRecord,
    Case,
    CaseCounter,
    CaseSla,
    Comment,
    Customer,
    DeadLetter,
    IdempotencyRecord,
    OutboxEvent,
    ProcessedEvent,
    Queue,
    Rule,
    SlaPolicy,
    StateMachine,
    StateMachineVersion,
    Task,
    Template,
    TimeRule,
)
from casedesk.store.repository import Page, Repository
from casedesk.store.tenancy import ALL_TENANTS, bound_tenant


class ByCodeRepository(Repository[Any]):
    """Configuration objects addressed by a per-tenant code."""

    async def by_code(self, code: str, *, lock: bool = False) -> Any:
        """``lock`` holds the row (FOR UPDATE) until commit, serialising writers of it."""
        statement = select(self.model).where(self.model.code == code)
        if lock:
            statement = statement.with_for_update()
        return await self.session.scalar(statement)

    async def all(self) -> list[Any]:
        statement = select(self.model).order_by(self.model.code)
        return list((await self.session.scalars(statement)).all())


class QueueRepository(ByCodeRepository):
    model = Queue
    label = "queue"


class StateMachineRepository(ByCodeRepository):
    model = StateMachine
    label = "state machine"

    async def versions(self, machine_id: uuid.UUID) -> list[StateMachineVersion]:
        statement = (
            select(StateMachineVersion)
            .where(StateMachineVersion.machine_id == machine_id)
            .order_by(StateMachineVersion.version)
        )
        return list((await self.session.scalars(statement)).all())

    async def version(self, machine_id: uuid.UUID, number: int) -> StateMachineVersion | None:
        result: StateMachineVersion | None = await self.session.scalar(
            select(StateMachineVersion).where(
                StateMachineVersion.machine_id == machine_id,
                StateMachineVersion.version == number,
            )
        )
        return result

    async def version_by_id(self, version_id: uuid.UUID) -> StateMachineVersion:
        found: StateMachineVersion | None = await self.session.scalar(
            select(StateMachineVersion).where(StateMachineVersion.id == version_id)
        )
        if found is None:
            raise LookupError(f"state machine version {version_id} is missing")
        return found

    async def latest_version_of(self, machine_id: uuid.UUID) -> StateMachineVersion | None:
        """The newest published version, in one query."""
        result: StateMachineVersion | None = await self.session.scalar(
            select(StateMachineVersion)
            .join(StateMachine, StateMachine.id == StateMachineVersion.machine_id)
            .where(
                StateMachine.id == machine_id,
                StateMachineVersion.version == StateMachine.latest_version,
            )
        )
        return result

    def add_version(self, version: StateMachineVersion) -> StateMachineVersion:
        self.session.add(version)
        return version


class TemplateRepository(ByCodeRepository):
    model = Template
    label = "template"


class CustomerRepository(Repository[Customer]):
    model = Customer
    label = "customer"

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


SORTS = ("-created", "created", "-updated", "updated", "-priority", "priority", "-number", "number")


def _sort_column(sort: str) -> Any:
    return {
        "created": Case.id,
        "updated": Case.updated_at,
        "priority": Case.priority,
        "number": Case.number,
    }[sort.lstrip("-")]


def _encode(sort: str, value: Any, last_id: uuid.UUID) -> str:
    raw = orjson.dumps([sort, value, str(last_id)], default=str)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> tuple[Any, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, last_id = orjson.loads(raw)
        if cursor_sort != sort:
            raise ValueError("cursor of another sort")
        return _key_of(sort.lstrip("-"), value), uuid.UUID(last_id)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidInput(
            "cursor is not one this list returned for this sort", field="cursor"
        ) from None


def _key_of(sort: str, value: Any) -> Any:
    """The cursor's sort key, checked to be of the sort column's type."""
    if sort == "updated":
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("naive time in cursor")
        return moment
    if sort == "created":
        return uuid.UUID(value)
    if type(value) is not int:
        raise ValueError("number expected in cursor")
    return value


class CaseRepository(Repository[Case]):
    model = Case
    label = "case"

    async def batch_after(
        self, after: uuid.UUID | None, *, closed: bool, limit: int = 500
    ) -> list[Case]:
        """The next ``limit`` open (or closed) cases in id order, for scans that page."""
        statement = select(Case).where(Case.closed.is_(closed)).order_by(Case.id).limit(limit)
        if after is not None:
            statement = statement.where(Case.id > after)
        return list((await self.session.scalars(statement)).all())

    async def next_number(self) -> int:
        """Take the tenant's next case number; the counter row stays locked until commit."""
        tenant_id = bound_tenant(self.session.sync_session)
        bump = (
            update(CaseCounter)
            .where(CaseCounter.tenant_id == tenant_id)
            .values(last_number=CaseCounter.last_number + 1)
        )
        if self.session.get_bind().dialect.update_returning:
            number = await self.session.scalar(bump.returning(CaseCounter.last_number))
        else:
            await self.session.execute(bump)
            number = await self.session.scalar(
                select(CaseCounter.last_number).where(CaseCounter.tenant_id == tenant_id)
            )
        if number is None:
            raise LookupError(f"tenant {tenant_id} has no case counter")
        return int(number)

    async def assign_number(self, case: Case, number: int) -> None:
        """Give a just-inserted case its number without counting it as a change."""
        await self.session.execute(
            update(Case)
            .where(Case.id == case.id)
            .values(number=number, updated_at=case.updated_at)
            .execution_options(synchronize_session=False)
        )
        set_committed_value(case, "number", number)

    async def start_numbering(self, tenant_id: uuid.UUID) -> None:
        await self.session.execute(insert(CaseCounter).values(tenant_id=tenant_id, last_number=0))

    async def locked(self, case_id: uuid.UUID) -> Case:
        """The case, its row held until commit: serialises writers that do not change it."""
        case: Case | None = await self.session.scalar(
            select(Case).where(Case.id == case_id).with_for_update()
        )
        if case is None:
            raise NotFound(f"case {case_id} not found")
        return case

    async def by_external_ref(self, channel: str, external_ref: str) -> Case | None:
        result: Case | None = await self.session.scalar(
            select(Case).where(Case.channel == channel, Case.external_ref == external_ref)
        )
        return result

    async def list_page(
        self, where: CaseFilter, *, sort: str, limit: int, cursor: str | None
    ) -> Page[Case]:
        if sort not in SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(SORTS)}", field="sort")
        statement = select(Case).where(*self._conditions(where))
        column, descending = _sort_column(sort), sort.startswith("-")
        if cursor is not None:
            value, last_id = _decode(cursor, sort)
            statement = statement.where(_after(column, value, last_id, descending))
        order: list[Any] = [column.desc(), Case.id.desc()] if descending else [column, Case.id]
        if column is Case.id:
            order = order[:1]
        rows = list((await self.session.scalars(statement.order_by(*order).limit(limit + 1))).all())
        items = rows[:limit]
        next_cursor = None
        if len(rows) > limit and items:
            last = items[-1]
            key = getattr(last, column.key)
            next_cursor = _encode(
                sort, key.isoformat() if isinstance(key, datetime) else key, last.id
            )
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
        return conditions

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


def _after(column: Any, value: Any, last_id: uuid.UUID, descending: bool) -> ColumnElement[bool]:
    if column is Case.id:
        newer_first: ColumnElement[bool] = Case.id < last_id if descending else Case.id > last_id
        return newer_first
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


class ActionRecordRepository(Repository[ActionRecord]):
    model = ActionRecord
    label = "action record"

    async def history(
        self, case_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> Page[ActionRecord]:
        statement = select(ActionRecord).where(ActionRecord.case_id == case_id)
        return await self.page(statement, limit=limit, cursor=cursor)


class ProcessedEventRepository:
    def __init__(self, session: Any) -> None:
        self.session = session

    async def claim(self, group: str, event_id: uuid.UUID) -> bool:
        """Record the event as processed by ``group`` in this transaction, in one statement;
        False when it already was. A concurrent transaction holding the same claim makes this
        one wait for its outcome rather than both doing the work."""
        values = {
            "consumer_group": group,
            "event_id": event_id,
            "processed_at": utcnow(),
            "tenant_id": bound_tenant(self.session.sync_session),
        }
        table = cast(Table, ProcessedEvent.__table__)
        connection = await self.session.connection()
        dialect = connection.dialect.name
        statement: Any
        if dialect == "postgresql":
            statement = postgresql_insert(table).values(values).on_conflict_do_nothing()
        elif dialect == "sqlite":
            statement = sqlite_insert(table).values(values).on_conflict_do_nothing()
        else:
            statement = insert(table).prefix_with("IGNORE").values(values)
        result = await connection.execute(statement)
        return bool(result.rowcount == 1)

    def mark(self, group: str, event_id: uuid.UUID) -> None:
        self.session.add(ProcessedEvent(consumer_group=group, event_id=event_id))


class DeadLetterRepository(Repository[DeadLetter]):
    model = DeadLetter
    label = "dead letter"

    async def exists(self, group: str, event_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(DeadLetter.id).where(
                DeadLetter.consumer_group == group, DeadLetter.event_id == event_id
            )
        )
        return found is not None

    async def list_page(
        self,
        *,
        group: str | None,
        replay_status: str | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[DeadLetter]:
        """``replay_status`` "never" means no replay was asked for."""
        statement = select(DeadLetter)
        if group is not None:
            statement = statement.where(DeadLetter.consumer_group == group)
        if replay_status == "never":
            statement = statement.where(DeadLetter.replay_status.is_(None))
        elif replay_status is not None:
            statement = statement.where(DeadLetter.replay_status == replay_status)
        return await self.page(statement, limit=limit, cursor=cursor)

    async def replayable(self, *, group: str | None, limit: int) -> list[DeadLetter]:
        """Dead letters still dead: never replayed, or whose last replay failed."""
        statement = select(DeadLetter).where(
            or_(DeadLetter.replay_status.is_(None), DeadLetter.replay_status == "failed")
        )
        if group is not None:
            statement = statement.where(DeadLetter.consumer_group == group)
        statement = statement.order_by(DeadLetter.id).limit(limit)
        return list((await self.session.scalars(statement)).all())


Ordered = TypeVar("Ordered", Rule, TimeRule)


class OrderedRuleRepository(Repository[Ordered]):
    """Rules kept in an order an admin sets; positions are per tenant."""

    async def in_order(self, *, enabled_only: bool = False) -> list[Ordered]:
        statement = select(self.model).order_by(self.model.position, self.model.id)
        if enabled_only:
            statement = statement.where(self.model.enabled.is_(True))
        return list((await self.session.scalars(statement)).all())

    async def make_room_at(self, position: int) -> None:
        """Move the rules at ``position`` and after one place down."""
        await self.session.execute(
            update(self.model)
            .where(self.model.position >= position)
            .values(position=self.model.position + 1)
            .execution_options(synchronize_session=False)
        )

    async def next_position(self) -> int:
        last = await self.session.scalar(select(func.max(self.model.position)))
        return 0 if last is None else int(last) + 1


class RuleRepository(OrderedRuleRepository[Rule]):
    model = Rule
    label = "rule"


class TimeRuleRepository(OrderedRuleRepository[TimeRule]):
    model = TimeRule
    label = "time rule"


class SlaRepository(Repository[SlaPolicy]):
    model = SlaPolicy
    label = "SLA policy"

    async def policies(self) -> list[SlaPolicy]:
        return list((await self.session.scalars(select(SlaPolicy).order_by(SlaPolicy.id))).all())

    async def clocks(self, case_id: uuid.UUID) -> list[CaseSla]:
        statement = select(CaseSla).where(CaseSla.case_id == case_id).order_by(CaseSla.metric)
        return list((await self.session.scalars(statement)).all())

    async def in_use(self, policy_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(CaseSla.id).where(CaseSla.policy_id == policy_id).limit(1)
        )
        return found is not None

    def add_clock(self, clock: CaseSla) -> CaseSla:
        self.session.add(clock)
        return clock


class IdempotencyRepository(Repository[IdempotencyRecord]):
    model = IdempotencyRecord
    label = "idempotency record"

    async def find_key(self, scope: str, key: str) -> IdempotencyRecord | None:
        result: IdempotencyRecord | None = await self.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
            )
        )
        return result


class OutboxRepository:
    def __init__(self, session: Any) -> None:
        self.session = session

    async def pending(self, *, limit: int) -> list[OutboxEvent]:
        """Committed events not yet on the bus, oldest first, of every tenant (the relay)."""
        statement = (
            select(OutboxEvent)
            .where(OutboxEvent.published_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(limit)
            .execution_options(**{ALL_TENANTS: True})
        )
        return list((await self.session.scalars(statement)).all())

    async def mark_published(self, ids: Sequence[int]) -> None:
        """Mark events delivered and give them their feed positions, after every position
        given so far and in sequence order. Only the relay calls this, one batch at a time
        under its lease, so positions become visible in the order they grow; a second relay
        that raced it would collide on the unique position and retry its batch."""
        if not ids:
            return
        highest = await self.top_position()
        # Sequences are unique, so sequence + one offset keeps them unique and in order.
        offset = (highest or 0) - min(ids) + 1
        await self.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(ids), OutboxEvent.published_at.is_(None))
            .values(published_at=utcnow(), position=OutboxEvent.id + offset)
            .execution_options(**{ALL_TENANTS: True, "synchronize_session": False})
        )

    async def top_position(self) -> int | None:
        """The highest feed position given so far, of every tenant."""
        top: int | None = await self.session.scalar(
            select(func.max(OutboxEvent.position)).execution_options(**{ALL_TENANTS: True})
        )
        return top

    def add_all(self, events: Sequence[OutboxEvent]) -> None:
        self.session.add_all(events)

    async def after(
        self, after: int, *, limit: int, types: Sequence[str] = ()
    ) -> list[OutboxEvent]:
        """The feed: delivered events past the position ``after``, in position order."""
        statement: Select[OutboxEvent] = select(OutboxEvent).where(
            OutboxEvent.position.is_not(None), OutboxEvent.position > after
        )
        if types:
            statement = statement.where(OutboxEvent.type.in_(types))
        statement = statement.order_by(OutboxEvent.position).limit(limit)
        return list((await self.session.scalars(statement)).all())

"""The activity template: every business operation on a case runs the same steps.

check permission → validate → before-extensions → execute → after-extensions →
record the action → write the events → commit, all in one transaction. Subclasses
fill in ``validate`` and ``execute``; ``run`` is final.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from casedesk.domain.events import about_case, new_event
from casedesk.domain.extensions.registry import ExtensionRegistry
from casedesk.domain.extensions.scenes import (
    ACTIVITY_AFTER,
    ACTIVITY_BEFORE,
    ACTIVITY_PERMISSION,
    PermissionCheck,
)
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import Conflict, Forbidden, PreconditionFailed
from casedesk.kit.ids import uuid7
from casedesk.kit.logging import get_logger
from casedesk.kit.text import optional_str
from casedesk.kit.tracing import TraceContext, trace_or_new
from casedesk.store.models import ActionRecord, Case, Comment, Task
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.store.writes import insert_rows

log = get_logger(__name__)
In = TypeVar("In")
Out = TypeVar("Out")


class ConcurrentChange(Conflict):
    """Another transaction changed the case first; trying again may succeed."""


@dataclass(frozen=True, slots=True)
class Operator:
    """Who acts: a user, a rule, a connector, a customer or the system."""

    type: str
    id: str | None = None
    name: str | None = None
    role: Role | None = None

    @classmethod
    def of(cls, principal: Principal) -> Operator:
        return cls("user", str(principal.user_id), principal.email, principal.role)

    @property
    def user_id(self) -> uuid.UUID | None:
        return uuid.UUID(self.id) if self.type == "user" and self.id else None


@dataclass
class ActivityContext:
    uow: UnitOfWork
    operator: Operator
    tenant_id: uuid.UUID
    edition: str
    extensions: ExtensionRegistry
    trace: TraceContext
    expected_version: int | None = None
    depth: int = 0
    """How many rule-made changes led to this one: 0 for a person's or a connector's."""

    @classmethod
    def of(
        cls,
        uow: UnitOfWork,
        principal: Principal,
        extensions: ExtensionRegistry,
        *,
        expected_version: int | None = None,
    ) -> ActivityContext:
        """The context of a person's or a program's request (the API's or a page's)."""
        return cls(
            uow=uow,
            operator=Operator.of(principal),
            tenant_id=principal.tenant_id,
            edition=principal.edition,
            extensions=extensions,
            trace=trace_or_new(),
            expected_version=expected_version,
        )


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event waiting for the flush, so that it carries the case as committed."""

    type: str
    case: Case
    data: dict[str, Any]


class Activity(ABC, Generic[In, Out]):
    name: ClassVar[str]
    required_role: ClassVar[Role] = Role.AGENT
    accepts_task: ClassVar[bool] = False
    """Like ``@TaskStatusToProcessing``: running this moves the case's open task to processing."""

    def __init__(self, context: ActivityContext) -> None:
        self.ctx = context
        self.uow = context.uow
        # This run's own: several activities may share a context (a rule's actions).
        self._records: list[ActionRecord] = []
        self._events: list[PendingEvent] = []

    @final
    async def run(self, params: In) -> Out:
        await self.uow.begin_write()
        await self._check_permission()
        try:
            return await self._run_steps(params)
        except StaleDataError:
            raise ConcurrentChange(
                "the case was changed by someone else while this ran; reload it and retry"
            ) from None
        except IntegrityError as exc:
            raise self.on_integrity_error(exc) from None

    async def _run_steps(self, params: In) -> Out:
        await self.validate(params)
        await self._extend(ACTIVITY_BEFORE, None)
        result = await self.execute(params)
        case = self.subject()
        if case is not None and self.moves_task_to_processing():
            await self._accept_open_task(case)
        await self._extend(ACTIVITY_AFTER, case)
        await self.uow.flush()
        await self.uow.actions.write(self._records)
        await self.before_commit()
        # Built after the flush, so each event carries the case as this activity left it;
        # the unit of work writes them once, when its transaction commits.
        self.uow.add_events(
            new_event(self.ctx.tenant_id, e.type, about_case(e.case), e.data, self.ctx.trace)
            for e in self._events
        )
        await self.uow.commit()
        return result

    async def check_permission(self) -> None:
        """Refuse an operator who may not run this activity. ``run`` checks first; an
        operation with work before its transaction (a file written) calls this before it."""
        await self._check_permission()

    async def validate(self, params: In) -> None:
        """Refuse bad parameters with a domain error; by default nothing to check."""

    @abstractmethod
    async def execute(self, params: In) -> Out: ...

    async def before_commit(self) -> None:
        """After the flush, before the events are written: last changes to the rows."""

    async def insert(self, *rows: Any) -> None:
        """Insert new rows now, in order, one statement per table, and keep them in the
        unit of work: later changes to them in this transaction are ordinary updates."""
        await insert_rows(self.uow.session, rows, attach=True)

    def moves_task_to_processing(self) -> bool:
        return self.accepts_task

    def subject(self) -> Case | None:
        """The case this activity worked on, once ``execute`` has run."""
        return getattr(self, "case", None)

    # --- helpers for subclasses --------------------------------------------------------

    async def load_case(self, case_id: uuid.UUID, *, lock: bool = False) -> Case:
        case = await (self.uow.cases.locked(case_id) if lock else self.uow.cases.get(case_id))
        expected = self.ctx.expected_version
        if expected is not None and case.version != expected:
            raise PreconditionFailed(
                f"the case is at version {case.version}, not {expected}; reload it and retry",
                current_version=case.version,
            )
        return case

    def record(self, case: Case, code: str, memo: dict[str, Any], task: Task | None = None) -> None:
        operator = self.ctx.operator
        self._records.append(
            ActionRecord(
                tenant_id=self.ctx.tenant_id,
                case_id=case.id,
                task_id=task.id if task else None,
                code=code,
                memo=memo,
                operator_type=operator.type,
                operator_id=operator.id,
                operator_name=operator.name,
                trace_id=self.ctx.trace.trace_id,
            )
        )

    def emit(self, event_type: str, case: Case, data: dict[str, Any] | None = None) -> None:
        actor = {"type": self.ctx.operator.type, "id": self.ctx.operator.id}
        facts = {"actor": actor, "chain_depth": self.ctx.depth, **(data or {})}
        self._events.append(PendingEvent(event_type, case, facts))

    def add_comment(self, case: Case, body: str, *, public: bool) -> Comment:
        """A comment written by the operator of this activity."""
        operator = self.ctx.operator
        comment: Comment = self.uow.comments.add(
            Comment(
                id=uuid7(),
                tenant_id=self.ctx.tenant_id,
                case_id=case.id,
                body=body,
                public=public,
                author_type=operator.type,
                author_id=operator.user_id,
                author_name=operator.name,
            )
        )
        return comment

    async def open_task(self, case: Case) -> Task | None:
        tasks = await self.uow.tasks.of_case(case.id)
        return next((task for task in reversed(tasks) if task.status != "done"), None)

    # --- the fixed steps ---------------------------------------------------------------

    async def _check_permission(self) -> None:
        operator = self.ctx.operator
        check = PermissionCheck(self.name, operator.type, operator.role, self.required_role)
        if not await self.ctx.extensions.call(ACTIVITY_PERMISSION, self.ctx.edition, check):
            raise Forbidden(f"{self.name} needs the {self.required_role} role")

    async def _extend(self, scene: Any, case: Case | None) -> None:
        await self.ctx.extensions.call(scene, self.ctx.edition, self.name, case)

    async def _accept_open_task(self, case: Case) -> None:
        task = await self.open_task(case)
        if task is None or task.status != "pending":
            return
        task.status = "processing"
        task.accepted_at = utcnow()
        if task.assignee_id is None and self.ctx.operator.user_id is not None:
            task.assignee_id = self.ctx.operator.user_id
        self.emit(
            "task.accepted",
            case,
            {"task_id": str(task.id), "assignee_id": optional_str(task.assignee_id)},
        )

    def on_integrity_error(self, exc: IntegrityError) -> Exception:
        """Turn a unique-constraint race into a domain error; subclasses refine it."""
        log.warning("integrity error", error=str(exc.orig)[:300])
        return Conflict("this change conflicts with another one made at the same time")

"""Create a case: number, initial state, first task, customer, and de-duplication."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError

from casedesk.activities.base import Activity, ActivityContext
from casedesk.domain.assignment import assignee_for_queue
from casedesk.domain.cases.forms import validate_form
from casedesk.domain.cases.inputs import CaseDraft, CustomerRef
from casedesk.domain.cases.machines import machine_of_version
from casedesk.domain.cases.priority import Priority
from casedesk.domain.cases.views import CaseDetail, Known, detail
from casedesk.domain.extensions.scenes import CASE_CREATE_DEFAULTS, CASE_CREATE_VALIDATE
from casedesk.kit.errors import Conflict, InvalidInput
from casedesk.kit.ids import uuid7
from casedesk.kit.text import optional_str
from casedesk.store.models import Case, Customer, IdempotencyRecord, Queue, Task, Template
from casedesk.store.unit_of_work import UnitOfWork

IDEMPOTENCY_SCOPE = "case.create"


@dataclass(frozen=True, slots=True)
class Idempotency:
    key: str
    fingerprint: str


def fingerprint(draft: CaseDraft) -> str:
    canonical = orjson.dumps(draft.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


@dataclass(slots=True)
class Created:
    detail: CaseDetail | None
    created: bool
    body: dict[str, Any] | None = None
    rendered: bytes = b""
    """The answer to a create, as JSON, made before the commit: what cannot be rendered is
    never committed, so a committed case is never answered with an error."""


class ExternalRefTaken(Conflict):
    """Another request created the case for this external reference at the same moment."""


class IdempotencyKeyInFlight(Conflict):
    title = "Request in flight"


class CreateCaseActivity(Activity[CaseDraft, Created]):
    name = "case.create"

    def __init__(self, context: ActivityContext, idempotency: Idempotency | None = None) -> None:
        super().__init__(context)
        self.idempotency = idempotency

    async def validate(self, params: CaseDraft) -> None:
        template = await self.uow.templates.by_code(params.template)
        if template is None:
            raise InvalidInput(f"no template {params.template!r}", field="template")
        self.template: Template = template
        extensions, edition = self.ctx.extensions, self.ctx.edition
        self.draft = await extensions.call(CASE_CREATE_DEFAULTS, edition, params, template)
        await extensions.call(CASE_CREATE_VALIDATE, edition, self.draft, template)
        validate_form(template.form_schema, self.draft.form)
        self.queue = await self._queue(self.draft.queue)
        await self._check_assignee(self.draft.assignee_id)
        await self._check_parent(self.draft.parent_id)

    async def execute(self, params: CaseDraft) -> Created:
        draft = self.draft
        if draft.external_ref is not None:
            existing = await self.uow.cases.by_external_ref(draft.channel, draft.external_ref)
            if existing is not None:
                self.case = existing
                self.created = Created(await self._detail(existing), created=False)
                return self.created
        version = await self.uow.machines.latest_version_of(self.template.machine_id)
        if version is None:
            raise InvalidInput(
                f"template {self.template.code!r} has a state machine with no published version",
                field="template",
            )
        machine = await machine_of_version(self.uow, version.id)
        customer = await self._customer(draft.customer)
        priority = draft.priority or Priority.from_rank(self.template.default_priority)
        assignee_id = draft.assignee_id or await assignee_for_queue(self.uow, self.queue)
        case = Case(
            id=uuid7(),
            tenant_id=self.ctx.tenant_id,
            # A placeholder until before_commit: the tenant's counter row is locked only
            # for the last statements of the transaction, not for all of it.
            number=-secrets.randbits(62) - 1,
            template_id=self.template.id,
            machine_version_id=version.id,
            state=machine.start.code,
            closed=False,
            title=draft.title,
            description=draft.description,
            priority=priority.rank,
            queue_id=self.queue.id,
            assignee_id=assignee_id,
            customer_id=customer.id if customer else None,
            channel=draft.channel,
            external_ref=draft.external_ref,
            parent_id=draft.parent_id,
            form=draft.form,
            tags=sorted(set(draft.tags)),
        )
        self.uow.cases.add(case)
        task = self.uow.tasks.add(
            Task(
                id=uuid7(),
                tenant_id=self.ctx.tenant_id,
                case_id=case.id,
                queue_id=self.queue.id,
                assignee_id=assignee_id,
                status="pending",
            )
        )
        self.case = case
        self.record(
            case,
            "case.create",
            {
                "state": case.state,
                "queue": self.queue.code,
                "priority": priority.value,
                "assignee_id": optional_str(case.assignee_id),
                **(
                    {"assigned_by": self.queue.assignment}
                    if assignee_id != draft.assignee_id
                    else {}
                ),
                "channel": case.channel,
                "form": _key_fields(draft.form),
            },
            task,
        )
        self.emit("case.created", case, {"template": self.template.code})
        self.emit("task.created", case, {"task_id": str(task.id), "queue": self.queue.code})
        await self.uow.flush()  # the case row must exist before the rows that refer to it
        self.customer = customer
        self.created = Created(None, created=True)
        self.task = task
        return self.created

    async def before_commit(self) -> None:
        case = self.subject()
        if case is None or not self.created.created:
            return
        await self.uow.cases.assign_number(case, await self.uow.cases.next_number())
        if case.parent_id is not None:
            parent = await self.uow.cases.get(case.parent_id)
            self.emit(
                "case.child_created",
                parent,
                {"child_id": str(case.id), "child_number": case.number},
            )
        known = Known(
            self.template.code, self.queue.code, self.customer, [self.task], [], fresh=True
        )
        view = await detail(self.uow, case, self.ctx.extensions, self.ctx.edition, known)
        self.created.detail = view
        self.created.body = view.model_dump(mode="json")
        self.created.rendered = orjson.dumps(self.created.body)
        if self.idempotency is not None:
            self.uow.idempotency.add(
                IdempotencyRecord(
                    tenant_id=self.ctx.tenant_id,
                    scope=IDEMPOTENCY_SCOPE,
                    key=self.idempotency.key,
                    fingerprint=self.idempotency.fingerprint,
                    status_code=201,
                    response=self.created.body,
                )
            )

    def on_integrity_error(self, exc: IntegrityError) -> Exception:
        message = str(exc.orig)
        if "external_ref" in message:
            return ExternalRefTaken("a case with this external_ref was created at the same time")
        if "idempotency" in message:
            return IdempotencyKeyInFlight(
                "a request with this Idempotency-Key is being processed; retry shortly"
            )
        return super().on_integrity_error(exc)

    async def _detail(self, case: Case) -> CaseDetail:
        return await detail(self.uow, case, self.ctx.extensions, self.ctx.edition)

    async def _queue(self, code: str | None) -> Queue:
        if code is None:
            queue: Queue = await self.uow.queues.get(self.template.default_queue_id)
            return queue
        found: Queue | None = await self.uow.queues.by_code(code)
        if found is None:
            raise InvalidInput(f"no queue {code!r}", field="queue")
        return found

    async def _check_assignee(self, user_id: uuid.UUID | None) -> None:
        if user_id is None:
            return
        user = await self.uow.users.find(user_id)
        if user is None or not user.active or user.role == "viewer":
            raise InvalidInput("assignee must be an active admin or agent", field="assignee_id")

    async def _check_parent(self, parent_id: uuid.UUID | None) -> None:
        if parent_id is not None and await self.uow.cases.find(parent_id) is None:
            raise InvalidInput(f"no case {parent_id} to be the parent", field="parent_id")

    async def _customer(self, ref: CustomerRef | None) -> Customer | None:
        if ref is None:
            return None
        customer = await self.uow.customers.by_email(ref.email)
        if customer is not None:
            if ref.name and customer.name != ref.name:
                customer.name = ref.name
            return customer
        try:
            async with self.uow.session.begin_nested():
                customer = self.uow.customers.add(Customer(email=ref.email, name=ref.name))
        except IntegrityError:
            customer = await self.uow.customers.by_email(ref.email)
        return customer


def _key_fields(form: dict[str, object]) -> dict[str, object]:
    """The scalar form fields, for the history; large values stay on the case."""
    return {
        k: v
        for k, v in form.items()
        if isinstance(v, str | int | float | bool) and len(str(v)) <= 200
    }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a create request answers: a new case, an existing one, or a replayed response."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False
    rendered: bytes = b""
    """The body as JSON when it was rendered before the commit that made it."""

    @property
    def version(self) -> int:
        return int(self.body["version"])

    def json(self) -> bytes:
        return self.rendered or orjson.dumps(self.body)


async def create_case(
    context: ActivityContext, draft: CaseDraft, idempotency: Idempotency | None = None
) -> Outcome:
    """Create a case once per Idempotency-Key and once per external reference."""
    uow = context.uow
    await uow.begin_write()
    if idempotency is not None:
        earlier = await replay(uow, idempotency)
        if earlier is not None:
            return Outcome(earlier.status_code, earlier.response, replayed=True)
    try:
        created = await CreateCaseActivity(context, idempotency).run(draft)
    except ExternalRefTaken:
        await uow.rollback()
        existing = await uow.cases.by_external_ref(draft.channel, draft.external_ref or "")
        if existing is None:
            raise
        view = await detail(uow, existing, context.extensions, context.edition)
        return Outcome(200, view.model_dump(mode="json"))
    if created.body is not None:
        return Outcome(201, created.body, rendered=created.rendered)
    assert created.detail is not None
    return Outcome(200, created.detail.model_dump(mode="json"))


async def replay(uow: UnitOfWork, ticket: Idempotency) -> IdempotencyRecord | None:
    """The stored answer to an earlier request with this key; 422 if its body differed."""
    record = await uow.idempotency.find_key(IDEMPOTENCY_SCOPE, ticket.key)
    if record is None:
        return None
    if record.fingerprint != ticket.fingerprint:
        raise InvalidInput(
            "this Idempotency-Key was already used with a different request body",
            field="Idempotency-Key",
        )
    return record

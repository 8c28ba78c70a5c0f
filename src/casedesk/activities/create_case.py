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
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import Conflict, InvalidInput
from casedesk.kit.ids import uuid7
from casedesk.kit.text import optional_str
from casedesk.store.models import Case, Customer, IdempotencyRecord, Task, Template
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
        cases = self.uow.cases
        setting = await cases.setting_for_new_case(params.template, params.queue, _email(params))
        if setting is None:
            raise InvalidInput(f"no template {params.template!r}", field="template")
        self.template: Template = setting.template
        extensions, edition = self.ctx.extensions, self.ctx.edition
        draft = await extensions.call(CASE_CREATE_DEFAULTS, edition, params, self.template)
        await extensions.call(CASE_CREATE_VALIDATE, edition, draft, self.template)
        validate_form(self.template.form_schema, draft.form)
        if (draft.queue, _email(draft)) != (params.queue, _email(params)):
            # The defaults chose another queue or customer than the query looked for.
            setting = await cases.setting_for_new_case(params.template, draft.queue, _email(draft))
            assert setting is not None
        if setting.queue is None:
            raise InvalidInput(f"no queue {draft.queue!r}", field="queue")
        self.draft, self.setting, self.queue = draft, setting, setting.queue
        await self._check_assignee(draft.assignee_id)
        await self._check_parent(draft.parent_id)

    async def execute(self, params: CaseDraft) -> Created:
        draft = self.draft
        if draft.external_ref is not None:
            existing = await self.uow.cases.by_external_ref(draft.channel, draft.external_ref)
            if existing is not None:
                self.case = existing
                self.created = Created(await self._detail(existing), created=False)
                return self.created
        version_id = self.setting.version_id
        if version_id is None:
            raise InvalidInput(
                f"template {self.template.code!r} has a state machine with no published version",
                field="template",
            )
        machine = await machine_of_version(self.uow, version_id)
        customer = await self._customer(draft.customer, self.setting.customer)
        priority = draft.priority or Priority.from_rank(self.template.default_priority)
        assignee_id = draft.assignee_id or await assignee_for_queue(self.uow, self.queue)
        now = utcnow()
        case = Case(
            id=uuid7(),
            tenant_id=self.ctx.tenant_id,
            # A placeholder until before_commit: the tenant's counter row is locked only
            # for the last statements of the transaction, not for all of it.
            number=-secrets.randbits(62) - 1,
            template_id=self.template.id,
            machine_version_id=version_id,
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
            created_at=now,
            updated_at=now,
        )
        task = Task(
            id=uuid7(),
            tenant_id=self.ctx.tenant_id,
            case_id=case.id,
            queue_id=self.queue.id,
            assignee_id=assignee_id,
            status="pending",
            created_at=now,
            updated_at=now,
        )
        await self.insert(case, task)  # the case row first: the task refers to it
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
        self.customer = customer
        self.created = Created(None, created=True)
        self.task = task
        return self.created

    async def before_commit(self) -> None:
        case = self.subject()
        if case is None or not self.created.created:
            return
        parent = await self.uow.cases.get(case.parent_id) if case.parent_id else None
        known = Known(
            self.template.code, self.queue.code, self.customer, [self.task], [], fresh=True
        )
        view = await detail(self.uow, case, self.ctx.extensions, self.ctx.edition, known)
        body = view.model_dump(mode="json")
        # Everything else is ready: the number is taken last, just before the events and
        # the commit, so the tenant's counter row is locked for as short a time as can be.
        number = await self.uow.cases.take_number(case)
        body["number"] = number
        self.created.detail = view.model_copy(update={"number": number})
        self.created.body = body
        self.created.rendered = orjson.dumps(body)
        if parent is not None:
            self.emit(
                "case.child_created", parent, {"child_id": str(case.id), "child_number": number}
            )
        if self.idempotency is not None:
            self.uow.idempotency.add(
                IdempotencyRecord(
                    tenant_id=self.ctx.tenant_id,
                    scope=IDEMPOTENCY_SCOPE,
                    key=self.idempotency.key,
                    fingerprint=self.idempotency.fingerprint,
                    status_code=201,
                    response=body,
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

    async def _check_assignee(self, user_id: uuid.UUID | None) -> None:
        if user_id is None:
            return
        user = await self.uow.users.find(user_id)
        if user is None or not user.active or user.role == "viewer":
            raise InvalidInput("assignee must be an active admin or agent", field="assignee_id")

    async def _check_parent(self, parent_id: uuid.UUID | None) -> None:
        if parent_id is not None and await self.uow.cases.find(parent_id) is None:
            raise InvalidInput(f"no case {parent_id} to be the parent", field="parent_id")

    async def _customer(self, ref: CustomerRef | None, found: Customer | None) -> Customer | None:
        if ref is None:
            return None
        if found is not None:
            if ref.name and found.name != ref.name:
                found.name = ref.name
            return found
        customer = Customer(
            id=uuid7(), tenant_id=self.ctx.tenant_id, email=ref.email, name=ref.name
        )
        if await self.uow.customers.insert_if_new(customer):
            return customer
        # Another request made this customer at the same moment: use theirs.
        return await self.uow.customers.by_email(ref.email)


def _email(draft: CaseDraft) -> str | None:
    return draft.customer.email if draft.customer else None


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
    case: Case | None = None
    """The case answered with, as loaded in the unit of work (none for a replay)."""

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
    activity = CreateCaseActivity(context, idempotency)
    try:
        created = await activity.run(draft)
    except ExternalRefTaken:
        await uow.rollback()
        existing = await uow.cases.by_external_ref(draft.channel, draft.external_ref or "")
        if existing is None:
            raise
        view = await detail(uow, existing, context.extensions, context.edition)
        return Outcome(200, view.model_dump(mode="json"), case=existing)
    if created.body is not None:
        return Outcome(201, created.body, rendered=created.rendered, case=activity.case)
    assert created.detail is not None
    return Outcome(200, created.detail.model_dump(mode="json"), case=activity.case)


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

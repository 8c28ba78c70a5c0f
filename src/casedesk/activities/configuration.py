"""Admin configuration: queues, state machines (draft → published versions) and templates."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from casedesk.domain.assignment import AssignmentMode
from casedesk.domain.cases.forms import check_form_schema
from casedesk.domain.cases.priority import Priority
from casedesk.domain.configuration import QueueChanges
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.domain.statemachine.definition import Definition, validate_definition
from casedesk.kit.errors import Conflict, InvalidInput, NotFound
from casedesk.store.models import Queue, StateMachine, StateMachineVersion, Template
from casedesk.store.unit_of_work import UnitOfWork


async def _commit(uow: UnitOfWork, what: str) -> None:
    """Commit; a unique constraint lost to a concurrent request is a 409, not a 500."""
    try:
        await uow.commit()
    except IntegrityError:
        raise Conflict(f"{what} was changed by another request at the same time; retry") from None


async def create_queue(
    uow: UnitOfWork,
    actor: Principal,
    *,
    code: str,
    name: str,
    assignment: AssignmentMode = AssignmentMode.MANUAL,
) -> Queue:
    actor.require(Role.ADMIN, "creating a queue")
    await uow.begin_write()
    if await uow.queues.by_code(code) is not None:
        raise Conflict(f"a queue {code!r} already exists", field="code")
    queue: Queue = uow.queues.add(Queue(code=code, name=name, assignment=assignment.value))
    await _commit(uow, f"queue {code!r}")
    return queue


async def update_queue(
    uow: UnitOfWork, actor: Principal, code: str, changes: QueueChanges
) -> Queue:
    """Rename a queue or change how its cases are assigned."""
    actor.require(Role.ADMIN, "changing a queue")
    await uow.begin_write()
    queue: Queue | None = await uow.queues.by_code(code, lock=True)
    if queue is None:
        raise NotFound(f"no queue {code!r}")
    if changes.name is not None:
        queue.name = changes.name
    if changes.assignment is not None:
        queue.assignment = changes.assignment.value
    await _commit(uow, f"queue {code!r}")
    return queue


async def set_queue_members(
    uow: UnitOfWork, actor: Principal, code: str, user_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    """The agents who work the queue, all at once (an empty list: everyone works it)."""
    actor.require(Role.ADMIN, "choosing a queue's members")
    await uow.begin_write()
    queue: Queue | None = await uow.queues.by_code(code, lock=True)
    if queue is None:
        raise NotFound(f"no queue {code!r}")
    for user_id in user_ids:
        user = await uow.users.find(user_id)
        if user is None:
            raise InvalidInput(f"no user {user_id}", field="user_ids")
        if Role(user.role) is Role.VIEWER:
            raise InvalidInput(f"{user.email} is a viewer, who works no queue", field="user_ids")
    await uow.queues.set_members(queue.tenant_id, queue.id, user_ids)
    await _commit(uow, f"queue {code!r}")
    return await uow.queues.members_of(queue.id)


async def save_machine_draft(
    uow: UnitOfWork, actor: Principal, *, code: str, name: str, definition: Definition
) -> StateMachine:
    """Create the machine or replace its draft; published versions are never touched."""
    actor.require(Role.ADMIN, "editing a state machine")
    await uow.begin_write()
    draft = definition.model_dump(mode="json", by_alias=True)
    machine: StateMachine | None = await uow.machines.by_code(code)
    if machine is None:
        machine = uow.machines.add(
            StateMachine(code=code, name=name, draft=draft, latest_version=0)
        )
    else:
        machine.name, machine.draft = name, draft
    await _commit(uow, f"state machine {code!r}")
    return machine


async def machine_by_code(uow: UnitOfWork, code: str, *, lock: bool = False) -> StateMachine:
    machine: StateMachine | None = await uow.machines.by_code(code, lock=lock)
    if machine is None:
        raise NotFound(f"no state machine {code!r}")
    return machine


@dataclass(frozen=True, slots=True)
class Published:
    version: StateMachineVersion
    unchanged: bool
    """The draft was the latest version already, so that version is the answer."""


async def publish_machine(uow: UnitOfWork, actor: Principal, code: str) -> Published:
    """Validate the draft and freeze it as version N+1; a problem list is one 422.

    A draft identical to the latest version publishes nothing: a second identical version
    would only make cases pinned to either look different when they are not.
    """
    actor.require(Role.ADMIN, "publishing a state machine")
    await uow.begin_write()
    machine = await machine_by_code(uow, code, lock=True)
    definition = Definition.model_validate(machine.draft)
    problems = validate_definition(definition)
    if problems:
        raise InvalidInput(
            f"the draft of {code!r} has {len(problems)} problem(s): "
            + "; ".join(problem.message for problem in problems),
            errors=[
                {"field": p.field, "rule": p.rule, "message": p.message, "type": p.rule}
                for p in problems
            ],
        )
    latest = await uow.machines.version(machine.id, machine.latest_version)
    if latest is not None and latest.definition == machine.draft:
        return Published(latest, unchanged=True)
    machine.latest_version += 1
    version = uow.machines.add_version(
        StateMachineVersion(
            machine_id=machine.id,
            version=machine.latest_version,
            definition=machine.draft,
            published_by=actor.user_id,
        )
    )
    await _commit(uow, f"state machine {code!r}")
    return Published(version, unchanged=False)


async def save_template(
    uow: UnitOfWork,
    actor: Principal,
    *,
    code: str,
    name: str,
    state_machine: str,
    form_schema: dict[str, Any],
    default_queue: str,
    default_priority: Priority,
    create: bool,
    public: bool = False,
) -> Template:
    actor.require(Role.ADMIN, "editing a template")
    await uow.begin_write()
    machine = await uow.machines.by_code(state_machine)
    if machine is None:
        raise InvalidInput(f"no state machine {state_machine!r}", field="state_machine")
    if machine.latest_version == 0:
        raise InvalidInput(
            f"state machine {state_machine!r} has no published version; publish it first",
            field="state_machine",
        )
    check_form_schema(form_schema)
    queue = await uow.queues.by_code(default_queue)
    if queue is None:
        raise InvalidInput(f"no queue {default_queue!r}", field="default_queue")
    template: Template | None = await uow.templates.by_code(code)
    if create and template is not None:
        raise Conflict(f"a template {code!r} already exists", field="code")
    if not create and template is None:
        raise NotFound(f"no template {code!r}")
    if template is None:
        template = uow.templates.add(Template(code=code))
    template.name, template.machine_id, template.form_schema = name, machine.id, form_schema
    template.default_queue_id, template.default_priority = queue.id, default_priority.rank
    template.public = public
    await _commit(uow, f"template {code!r}")
    return template

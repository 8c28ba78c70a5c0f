from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from casedesk.activities import configuration
from casedesk.api import API_V1
from casedesk.api.deps import PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.api.schemas.configuration import (
    MachineIn,
    MachineOut,
    ProblemOut,
    PublishOut,
    QueueChanges,
    QueueIn,
    QueueOut,
    TemplateIn,
    TemplateOut,
    TemplateUpdate,
    VersionOut,
)
from casedesk.domain.cases.priority import Priority
from casedesk.domain.statemachine.definition import Definition, validate_definition
from casedesk.kit.errors import NotFound
from casedesk.kit.values import INT32_MAX
from casedesk.store.models import StateMachine, Template
from casedesk.store.unit_of_work import UnitOfWork

router = APIRouter(prefix=API_V1, tags=["configuration"], route_class=ApiRoute)


@router.post("/queues", response_model=QueueOut, status_code=status.HTTP_201_CREATED)
async def create_queue(body: QueueIn, principal: PrincipalDep, uow: UnitOfWorkDep) -> QueueOut:
    queue = await configuration.create_queue(
        uow, principal, code=body.code, name=body.name, assignment=body.assignment
    )
    return QueueOut.model_validate(queue)


@router.patch("/queues/{code}", response_model=QueueOut, summary="Rename, or set the assignment")
async def update_queue(
    code: str, body: QueueChanges, principal: PrincipalDep, uow: UnitOfWorkDep
) -> QueueOut:
    queue = await configuration.update_queue(uow, principal, code, body)
    return QueueOut.model_validate(queue)


@router.get("/queues", response_model=list[QueueOut])
async def list_queues(uow: UnitOfWorkDep) -> list[QueueOut]:
    return [QueueOut.model_validate(queue) for queue in await uow.queues.all()]


class QueueMembers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: list[uuid.UUID] = Field(
        max_length=1000,
        description="the agents and admins who work the queue; empty: everyone works it",
    )


@router.get("/queues/{code}/members", response_model=QueueMembers)
async def queue_members(code: str, uow: UnitOfWorkDep) -> QueueMembers:
    queue = await uow.queues.by_code(code)
    if queue is None:
        raise NotFound(f"no queue {code!r}")
    return QueueMembers(user_ids=await uow.queues.members_of(queue.id))


@router.put(
    "/queues/{code}/members",
    response_model=QueueMembers,
    summary="Who works the queue: its cases show in their views, and assignment picks among them",
)
async def set_queue_members(
    code: str, body: QueueMembers, principal: PrincipalDep, uow: UnitOfWorkDep
) -> QueueMembers:
    members = await configuration.set_queue_members(uow, principal, code, body.user_ids)
    return QueueMembers(user_ids=members)


async def _machine_out(uow: UnitOfWork, machine: StateMachine) -> MachineOut:
    problems = validate_definition(Definition.model_validate(machine.draft))
    return MachineOut(
        code=machine.code,
        name=machine.name,
        draft=machine.draft,
        draft_problems=[
            ProblemOut(field=p.field, rule=p.rule, message=p.message) for p in problems
        ],
        latest_version=machine.latest_version,
        versions=[
            VersionOut(version=v.version, published_at=v.published_at)
            for v in await uow.machines.versions(machine.id)
        ],
    )


@router.post(
    "/state-machines",
    response_model=MachineOut,
    summary="Create a state machine or replace its draft",
)
async def save_state_machine(
    body: MachineIn, principal: PrincipalDep, uow: UnitOfWorkDep
) -> MachineOut:
    definition = Definition(states=body.states, transitions=body.transitions)
    machine = await configuration.save_machine_draft(
        uow, principal, code=body.code, name=body.name, definition=definition
    )
    return await _machine_out(uow, machine)


@router.get("/state-machines", response_model=list[MachineOut])
async def list_state_machines(uow: UnitOfWorkDep) -> list[MachineOut]:
    return [await _machine_out(uow, machine) for machine in await uow.machines.all()]


@router.get("/state-machines/{code}", response_model=MachineOut)
async def read_state_machine(code: str, uow: UnitOfWorkDep) -> MachineOut:
    return await _machine_out(uow, await configuration.machine_by_code(uow, code))


@router.post(
    "/state-machines/{code}/publish",
    response_model=PublishOut,
    status_code=status.HTTP_201_CREATED,
    summary="Validate the draft and publish it as the next immutable version",
    description="201 with the new version; 200 with the latest version and `unchanged: true`"
    " when the draft is that version already (nothing is published).",
    responses={200: {"model": PublishOut, "description": "the draft was published already"}},
)
async def publish_state_machine(
    code: str, principal: PrincipalDep, uow: UnitOfWorkDep, response: Response
) -> PublishOut:
    published = await configuration.publish_machine(uow, principal, code)
    if published.unchanged:
        response.status_code = status.HTTP_200_OK
    version = published.version
    return PublishOut(
        version=version.version,
        published_at=version.published_at,
        definition=version.definition,
        unchanged=published.unchanged,
    )


@router.get("/state-machines/{code}/versions/{version}", response_model=VersionOut)
async def read_state_machine_version(
    code: str, version: Annotated[int, Path(ge=1, le=INT32_MAX)], uow: UnitOfWorkDep
) -> VersionOut:
    machine = await configuration.machine_by_code(uow, code)
    found = await uow.machines.version(machine.id, version)
    if found is None:
        raise NotFound(f"state machine {code!r} has no version {version}")
    return VersionOut(
        version=found.version, published_at=found.published_at, definition=found.definition
    )


async def _template_out(uow: UnitOfWork, template: Template) -> TemplateOut:
    machine = await uow.machines.get(template.machine_id)
    queue = await uow.queues.get(template.default_queue_id)
    return TemplateOut(
        id=template.id,
        code=template.code,
        name=template.name,
        state_machine=machine.code,
        form_schema=template.form_schema,
        default_queue=queue.code,
        default_priority=Priority.from_rank(template.default_priority),
        public=template.public,
        created_at=template.created_at,
        updated_at=template.updated_at,
    )


@router.post("/templates", response_model=TemplateOut, status_code=status.HTTP_201_CREATED)
async def create_template(
    body: TemplateIn, principal: PrincipalDep, uow: UnitOfWorkDep
) -> TemplateOut:
    template = await configuration.save_template(
        uow,
        principal,
        create=True,
        **body.model_dump(exclude={"default_priority"}),
        default_priority=body.default_priority,
    )
    return await _template_out(uow, template)


@router.put("/templates/{code}", response_model=TemplateOut)
async def update_template(
    code: str, body: TemplateUpdate, principal: PrincipalDep, uow: UnitOfWorkDep
) -> TemplateOut:
    template = await configuration.save_template(
        uow,
        principal,
        create=False,
        code=code,
        **body.model_dump(exclude={"default_priority"}),
        default_priority=body.default_priority,
    )
    return await _template_out(uow, template)


@router.get("/templates", response_model=list[TemplateOut])
async def list_templates(uow: UnitOfWorkDep) -> list[TemplateOut]:
    return [await _template_out(uow, template) for template in await uow.templates.all()]


@router.get("/templates/{code}", response_model=TemplateOut)
async def read_template(code: str, uow: UnitOfWorkDep) -> TemplateOut:
    template = await uow.templates.by_code(code)
    if template is None:
        raise NotFound(f"no template {code!r}")
    return await _template_out(uow, template)

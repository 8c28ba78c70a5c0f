"""Workflows: drafts, published versions, and turning them on and off; their subscriptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from casedesk.activities import workflows
from casedesk.api import API_V1
from casedesk.api.deps import ContainerDep, PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.api.schemas.workflows import (
    CursorSummary,
    ProblemOut,
    PublishIn,
    PublishOut,
    SubscriptionOut,
    VersionOut,
    WorkflowIn,
    WorkflowOut,
)
from casedesk.bootstrap import Container
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.kit.errors import NotFound
from casedesk.kit.values import INT32_MAX
from casedesk.platform import instant, subscriptions
from casedesk.store.models import Subscription, Workflow
from casedesk.store.unit_of_work import UnitOfWork

router = APIRouter(prefix=API_V1, tags=["workflows"], route_class=ApiRoute)
CURSOR_PREVIEW = 200


def lifecycle(container: Container) -> workflows.Lifecycle:
    return workflows.Lifecycle(subscriptions.start, subscriptions.stop, container.box)


async def subscription_out(
    uow: UnitOfWork,
    subscription: Subscription,
    *,
    principal: Principal,
    container: Container,
    request: Request,
) -> SubscriptionOut:
    facts = await workflows.facts_of(uow, subscription)
    token = instant.hook_token(subscription, container.box)
    hook_url = None
    if token is not None and principal.role.at_least(Role.ADMIN):
        hook_url = str(request.base_url).rstrip("/") + instant.HOOK_PATH + token
    cursor = subscription.cursor
    preview = None
    if cursor is not None:
        shown = str(cursor.get("value", cursor)) if isinstance(cursor, dict) else str(cursor)
        preview = shown[:CURSOR_PREVIEW]
    return SubscriptionOut(
        id=subscription.id,
        workflow=facts.workflow,
        connector=facts.connector,
        trigger=subscription.trigger,
        kind=facts.kind,
        connection_id=subscription.connection_id,
        settings=subscription.settings,
        enabled=subscription.enabled,
        status=subscription.status,
        cursor=CursorSummary(set=cursor is not None, preview=preview),
        consecutive_failures=subscription.consecutive_failures,
        last_error=subscription.last_error,
        last_run_at=subscription.last_run_at,
        hook_url=hook_url,
        external_id=subscription.external_id,
        external_expires_at=subscription.external_expires_at,
        created_at=subscription.created_at,
        updated_at=subscription.updated_at,
    )


async def _workflow_out(
    uow: UnitOfWork,
    workflow: Workflow,
    principal: Principal,
    container: Container,
    request: Request,
) -> WorkflowOut:
    spec = workflows.parsed(workflow.draft)
    problems = [] if spec is None else await workflows.check(uow, spec)
    subscription = await uow.subscriptions.of_workflow(workflow.id)
    return WorkflowOut(
        code=workflow.code,
        name=workflow.name,
        enabled=workflow.enabled,
        draft=workflow.draft,
        draft_problems=[
            ProblemOut(field=p.field, message=p.message, type=p.type) for p in problems
        ],
        latest_version=workflow.latest_version,
        versions=[
            VersionOut(version=v.version, published_at=v.published_at)
            for v in await uow.workflows.versions(workflow.id)
        ],
        subscription=None
        if subscription is None
        else await subscription_out(
            uow, subscription, principal=principal, container=container, request=request
        ),
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
    )


@router.post(
    "/workflows",
    response_model=WorkflowOut,
    summary="Create a workflow or replace its draft",
    description="The draft may name what does not exist yet; `draft_problems` lists what "
    "publishing it would refuse.",
)
async def save_workflow(
    body: WorkflowIn,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
    request: Request,
) -> WorkflowOut:
    workflow = await workflows.save_draft(uow, principal, code=body.code, spec=body)
    return await _workflow_out(uow, workflow, principal, container, request)


@router.get("/workflows", response_model=list[WorkflowOut])
async def list_workflows(
    principal: PrincipalDep, uow: UnitOfWorkDep, container: ContainerDep, request: Request
) -> list[WorkflowOut]:
    return [
        await _workflow_out(uow, workflow, principal, container, request)
        for workflow in await uow.workflows.all()
    ]


@router.get("/workflows/{code}", response_model=WorkflowOut)
async def read_workflow(
    code: str,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
    request: Request,
) -> WorkflowOut:
    workflow = await workflows.workflow_by_code(uow, code)
    return await _workflow_out(uow, workflow, principal, container, request)


@router.post(
    "/workflows/{code}/publish",
    response_model=PublishOut,
    status_code=status.HTTP_201_CREATED,
    summary="Check the draft and publish it as the next immutable version",
    description="201 with the new version; 200 with the latest version and `unchanged: true`"
    " when the draft is that version already. Every problem of the draft is one 422, each"
    " with its `field`. The workflow's subscription is made on the first publish and kept"
    " after that (with its cursor, unless the trigger or the connection changed).",
    responses={200: {"model": PublishOut, "description": "the draft was published already"}},
)
async def publish_workflow(
    code: str,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
    request: Request,
    response: Response,
    body: PublishIn | None = None,
) -> PublishOut:
    enabled = None if body is None else body.enabled
    published = await workflows.publish(
        uow, principal, code, enabled=enabled, lifecycle=lifecycle(container)
    )
    if published.unchanged:
        response.status_code = status.HTTP_200_OK
    version = published.version
    return PublishOut(
        version=version.version,
        published_at=version.published_at,
        definition=version.definition,
        unchanged=published.unchanged,
        enabled=published.workflow.enabled,
        subscription=await subscription_out(
            uow, published.subscription, principal=principal, container=container, request=request
        ),
    )


async def _switch(
    code: str,
    enabled: bool,
    principal: Principal,
    uow: UnitOfWork,
    container: Container,
    request: Request,
) -> WorkflowOut:
    workflow, _ = await workflows.set_enabled(
        uow, principal, code, enabled=enabled, lifecycle=lifecycle(container)
    )
    return await _workflow_out(uow, workflow, principal, container, request)


@router.post(
    "/workflows/{code}/enable",
    response_model=WorkflowOut,
    summary="Turn the workflow on: its subscription starts",
)
async def enable_workflow(
    code: str,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
    request: Request,
) -> WorkflowOut:
    return await _switch(code, True, principal, uow, container, request)


@router.post(
    "/workflows/{code}/disable",
    response_model=WorkflowOut,
    summary="Turn the workflow off: its subscription stops (and keeps its cursor)",
)
async def disable_workflow(
    code: str,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
    request: Request,
) -> WorkflowOut:
    return await _switch(code, False, principal, uow, container, request)


@router.get("/workflows/{code}/versions/{version}", response_model=VersionOut)
async def read_workflow_version(
    code: str, version: Annotated[int, Path(ge=1, le=INT32_MAX)], uow: UnitOfWorkDep
) -> VersionOut:
    workflow = await workflows.workflow_by_code(uow, code)
    found = await uow.workflows.version(workflow.id, version)
    if found is None:
        raise NotFound(f"workflow {code!r} has no version {version}")
    return VersionOut(
        version=found.version, published_at=found.published_at, definition=found.definition
    )

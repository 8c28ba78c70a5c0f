"""Executions: every run of a workflow with its steps; retry a failed one, replay any one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import status as http_status

from casedesk.api import API_V1
from casedesk.api.deps import CursorParam, PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.api.schemas.workflows import (
    ExecutionDetail,
    ExecutionOut,
    ExecutionPage,
    ExecutionStatus,
    StepOut,
)
from casedesk.integrations.manifests.common import Code
from casedesk.kit.errors import NotFound
from casedesk.kit.tracing import parse_traceparent
from casedesk.kit.values import Instant
from casedesk.platform import runner
from casedesk.store.models import Execution
from casedesk.store.platform import ExecutionFilter
from casedesk.store.unit_of_work import UnitOfWork

router = APIRouter(prefix=API_V1, tags=["workflows"], route_class=ApiRoute)


async def _codes(uow: UnitOfWork) -> dict[uuid.UUID, str]:
    return {workflow.id: workflow.code for workflow in await uow.workflows.all()}


def _out(execution: Execution, codes: dict[uuid.UUID, str]) -> ExecutionOut:
    trace = parse_traceparent(execution.traceparent)
    return ExecutionOut(
        id=execution.id,
        workflow=codes.get(execution.workflow_id, ""),
        workflow_id=execution.workflow_id,
        workflow_version=execution.workflow_version,
        subscription_id=execution.subscription_id,
        source_id=execution.source_id,
        status=execution.status,
        attempts=execution.attempts,
        error=execution.error,
        replay_of=execution.replay_of,
        trace_id=None if trace is None else trace.trace_id,
        created_at=execution.created_at,
        started_at=execution.started_at,
        finished_at=execution.finished_at,
    )


async def _detail(uow: UnitOfWork, execution: Execution) -> ExecutionDetail:
    summary = _out(execution, await _codes(uow))
    steps = await uow.executions.steps(execution.id)
    return ExecutionDetail(
        **summary.model_dump(),
        trigger_item=execution.trigger_item,
        steps=[StepOut.model_validate(step) for step in steps],
    )


@router.get(
    "/executions",
    response_model=ExecutionPage,
    summary="Runs of workflows, newest first",
)
async def list_executions(
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    workflow: Annotated[Code | None, Query(description="a workflow's code")] = None,
    status: Annotated[ExecutionStatus | None, Query()] = None,
    subscription: Annotated[uuid.UUID | None, Query(description="a subscription's id")] = None,
    created_after: Annotated[Instant | None, Query()] = None,
    created_before: Annotated[Instant | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: CursorParam = None,
) -> ExecutionPage:
    codes = await _codes(uow)
    workflow_id = None
    if workflow is not None:
        workflow_id = next((id_ for id_, code in codes.items() if code == workflow), None)
        if workflow_id is None:
            return ExecutionPage(items=[], next_cursor=None)
    where = ExecutionFilter(
        workflow_id=workflow_id,
        status=status,
        subscription_id=subscription,
        created_after=created_after,
        created_before=created_before,
    )
    page = await uow.executions.list_page(where, limit=limit, cursor=cursor)
    return ExecutionPage(
        items=[_out(item, codes) for item in page.items], next_cursor=page.next_cursor
    )


@router.get("/executions/{execution_id}", response_model=ExecutionDetail)
async def read_execution(execution_id: uuid.UUID, uow: UnitOfWorkDep) -> ExecutionDetail:
    execution = await uow.executions.find(execution_id)
    if execution is None:
        raise NotFound(f"execution {execution_id} not found")
    return await _detail(uow, execution)


@router.post(
    "/executions/{execution_id}/retry",
    response_model=ExecutionDetail,
    status_code=http_status.HTTP_202_ACCEPTED,
    summary="Run a failed execution again (same version; its succeeded steps stand)",
    description="409 when the execution has not failed.",
)
async def retry_execution(
    execution_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> ExecutionDetail:
    execution = await runner.retry(uow, principal, execution_id)
    return await _detail(uow, execution)


@router.post(
    "/executions/{execution_id}/replay",
    response_model=ExecutionDetail,
    status_code=http_status.HTTP_202_ACCEPTED,
    summary="Run any execution's recorded trigger item again, as a new execution",
    description="The new execution runs the workflow's published version and names the "
    "original in `replay_of`.",
)
async def replay_execution(
    execution_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> ExecutionDetail:
    execution = await runner.replay(uow, principal, execution_id)
    return await _detail(uow, execution)

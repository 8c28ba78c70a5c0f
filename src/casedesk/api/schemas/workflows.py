"""Bodies of the workflow, execution and subscription endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from casedesk.domain.workflows import WorkflowSpec
from casedesk.integrations.manifests.common import Code

ExecutionStatus = Literal["queued", "running", "succeeded", "failed", "filtered", "dropped"]
SubscriptionStatus = Literal["active", "failing", "disabled"]


class WorkflowIn(WorkflowSpec):
    """A workflow draft: its code, and what it does (trigger, filter, steps)."""

    code: Code


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(
        default=None, description="turn the workflow on or off as it is published; unset: as it is"
    )


class ProblemOut(BaseModel):
    field: str
    message: str
    type: str


class VersionOut(BaseModel):
    version: int
    published_at: datetime
    definition: dict[str, Any] | None = None


class CursorSummary(BaseModel):
    set: bool = Field(description="false until the subscription's first run sets a baseline")
    preview: str | None = Field(description="the start of the cursor, as JSON")


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    workflow: str
    connector: str | None
    trigger: str
    kind: Literal["polling", "instant"] | None = Field(
        description="null when the published trigger cannot be found any more"
    )
    connection_id: uuid.UUID | None
    settings: dict[str, Any]
    enabled: bool
    status: str
    cursor: CursorSummary
    consecutive_failures: int
    last_error: str | None
    last_run_at: datetime | None
    hook_url: str | None = Field(
        description="where the source posts (instant triggers); shown to admins only"
    )
    external_id: str | None
    external_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SubscriptionPage(BaseModel):
    items: list[SubscriptionOut]
    next_cursor: str | None


class WorkflowOut(BaseModel):
    code: str
    name: str
    enabled: bool
    draft: dict[str, Any]
    draft_problems: list[ProblemOut] = Field(
        description="what publishing the draft would refuse; empty when it can be published"
    )
    latest_version: int
    versions: list[VersionOut]
    subscription: SubscriptionOut | None = Field(
        description="made on the first publish; null before"
    )
    created_at: datetime
    updated_at: datetime


class PublishOut(VersionOut):
    unchanged: bool = Field(
        description="true: the draft was this version already, and nothing was published"
    )
    enabled: bool
    subscription: SubscriptionOut


class ExecutionOut(BaseModel):
    id: uuid.UUID
    workflow: str
    workflow_id: uuid.UUID
    workflow_version: int
    subscription_id: uuid.UUID | None
    source_id: str | None
    status: ExecutionStatus
    attempts: int
    error: str | None
    replay_of: uuid.UUID | None
    trace_id: str | None = Field(description="its calls: GET /api/v1/traces?execution_id=")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class StepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    position: int
    name: str
    kind: str
    status: str = Field(description="succeeded, failed, skipped, filtered or gone")
    input: Any
    output: Any
    error: str | None
    trace_ids: list[str]
    started_at: datetime
    duration_ms: float


class ExecutionDetail(ExecutionOut):
    trigger_item: dict[str, Any]
    steps: list[StepOut]


class ExecutionPage(BaseModel):
    items: list[ExecutionOut]
    next_cursor: str | None

"""Bodies of the configuration endpoints: queues, state machines and templates (what they
take is in ``domain/configuration.py``, shared with the admin screens)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from casedesk.domain.assignment import AssignmentMode
from casedesk.domain.cases.priority import Priority
from casedesk.domain.configuration import (
    Code,
    Input,
    MachineIn,
    Name,
    QueueChanges,
    QueueIn,
    TemplateIn,
    TemplateUpdate,
)

__all__ = [
    "Code",
    "Input",
    "MachineIn",
    "Name",
    "QueueChanges",
    "QueueIn",
    "TemplateIn",
    "TemplateUpdate",
]


class QueueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    assignment: AssignmentMode
    created_at: datetime


class ProblemOut(BaseModel):
    field: str
    rule: str
    message: str


class VersionOut(BaseModel):
    version: int
    published_at: datetime
    definition: dict[str, Any] | None = None


class PublishOut(VersionOut):
    unchanged: bool = Field(
        description="true: the draft was this version already, and nothing was published"
    )


class MachineOut(BaseModel):
    code: str
    name: str
    draft: dict[str, Any]
    draft_problems: list[ProblemOut] = Field(
        description="what publishing the draft would refuse; empty when it can be published"
    )
    latest_version: int
    versions: list[VersionOut]


class TemplateOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    state_machine: str
    form_schema: dict[str, Any]
    default_queue: str
    default_priority: Priority
    public: bool
    created_at: datetime
    updated_at: datetime

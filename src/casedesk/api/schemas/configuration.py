"""Bodies of the configuration endpoints: queues, state machines and templates."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from casedesk.domain.cases.priority import Priority
from casedesk.domain.statemachine.definition import Definition
from casedesk.kit.values import JsonObject

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueueIn(Input):
    code: Code
    name: Name


class QueueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    created_at: datetime


class MachineIn(Definition):
    """A state machine draft: ``states`` and ``transitions`` plus its code and name."""

    code: Code
    name: Name


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


class TemplateIn(Input):
    code: Code
    name: Name
    state_machine: Code
    form_schema: JsonObject = Field(
        default_factory=lambda: {"type": "object"}, description="JSON Schema of the case form"
    )
    default_queue: Code
    default_priority: Priority = Priority.NORMAL


class TemplateUpdate(Input):
    name: Name
    state_machine: Code
    form_schema: JsonObject = Field(default_factory=lambda: {"type": "object"})
    default_queue: Code
    default_priority: Priority = Priority.NORMAL


class TemplateOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    state_machine: str
    form_schema: dict[str, Any]
    default_queue: str
    default_priority: Priority
    created_at: datetime
    updated_at: datetime

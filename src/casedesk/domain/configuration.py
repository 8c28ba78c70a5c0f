"""What an admin sends to configure the desk: queues, state machines and templates.

The API's bodies and the admin screens' forms are both read into these, so a code or a name
is checked the same way wherever it comes from.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from casedesk.domain.assignment import AssignmentMode
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
    assignment: AssignmentMode = Field(
        default=AssignmentMode.MANUAL,
        description="how a case arriving without an assignee gets one",
    )


class QueueChanges(Input):
    """A queue's name or assignment mode; what is left out stays."""

    name: Name | None = None
    assignment: AssignmentMode | None = None


class MachineIn(Definition):
    """A state machine draft: ``states`` and ``transitions`` plus its code and name."""

    code: Code
    name: Name


class TemplateIn(Input):
    code: Code
    name: Name
    state_machine: Code
    form_schema: JsonObject = Field(
        default_factory=lambda: {"type": "object"}, description="JSON Schema of the case form"
    )
    default_queue: Code
    default_priority: Priority = Priority.NORMAL
    public: bool = Field(
        default=False, description="customers may open cases of this type in the portal"
    )


class TemplateUpdate(Input):
    name: Name
    state_machine: Code
    form_schema: JsonObject = Field(default_factory=lambda: {"type": "object"})
    default_queue: Code
    default_priority: Priority = Priority.NORMAL
    public: bool = Field(
        default=False, description="customers may open cases of this type in the portal"
    )

"""What the case activities take: validated shapes shared by the API and other callers."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from casedesk.domain.cases.priority import Priority
from casedesk.kit.text import Email
from casedesk.kit.values import JsonObject

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Text = Annotated[str, StringConstraints(max_length=65_536)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=63)]
Channel = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{0,62}$")]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerRef(Input):
    email: Email
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None


class CaseDraft(Input):
    """A case to create; extensions may fill defaults into it before it is saved."""

    template: Code
    title: Title
    description: Text | None = None
    priority: Priority | None = None
    queue: Code | None = None
    assignee_id: uuid.UUID | None = None
    customer: CustomerRef | None = None
    channel: Channel = "api"
    external_ref: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    parent_id: uuid.UUID | None = None
    form: JsonObject = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list, max_length=50)


class ActionInput(Input):
    comment: Text | None = None
    public: bool = False


class TransferInput(Input):
    queue: Code | None = None
    assignee_id: uuid.UUID | None = Field(
        default=None, description="the new assignee; send `unassign: true` to clear it"
    )
    unassign: bool = False
    comment: Text | None = None


class AuthorRef(Input):
    type: Literal["user", "customer", "system"]
    email: Email | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None


class CommentInput(Input):
    body: Annotated[str, StringConstraints(min_length=1, max_length=65_536)]
    public: bool = True
    author: AuthorRef | None = Field(
        default=None, description="who wrote it; defaults to the calling user"
    )
    channel: Channel | None = None
    external_id: Annotated[str, StringConstraints(max_length=255)] | None = None
    attachment_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=100,
        description="attachments uploaded to the case before, not yet on a comment",
    )


class CaseChanges(Input):
    """A partial update; ``form`` is merged (a key set to null is removed)."""

    title: Title | None = None
    priority: Priority | None = None
    form: JsonObject | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)


class RatingInput(Input):
    score: int = Field(ge=1, le=5)
    comment: Text | None = None

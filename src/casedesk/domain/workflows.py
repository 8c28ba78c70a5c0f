"""What a workflow says: its trigger, a filter, and the steps each item goes through.

trigger → enrich (the trigger's enricher, when it has one) → filter → steps. Step fields are
templates (``integrations.expressions``) over ``trigger`` (the item, enriched), ``steps``
(earlier steps' outputs by name) and ``execution`` (its id); the filter is the condition
language of event rules, over ``trigger.*``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from casedesk.domain.automation.conditions import AllOf, Condition
from casedesk.integrations.manifests.common import Code, RequestTemplate, Template, TemplateTree


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TriggerRef(_Part):
    connection_id: uuid.UUID | None = Field(
        default=None, description="the connection the trigger uses (none for a plain webhook)"
    )
    connector: Code = Field(description="the connector's id, e.g. `webhook`")
    trigger: Code = Field(description="the connector's trigger, e.g. `delivery`")
    settings: dict[str, Any] = Field(default_factory=dict)


class _Step(_Part):
    name: Code = Field(description="how later steps name its output: `steps.<name>`")
    when: Condition | None = Field(default=None, description="the step runs only if this holds")


class CreateCase(_Step):
    kind: Literal["create_case"]
    template: Template
    title: Template
    description: Template | None = None
    priority: Template | None = None
    queue: Template | None = None
    customer_email: Template | None = None
    customer_name: Template | None = None
    form: TemplateTree = None
    tags: list[Template] = Field(default_factory=list, max_length=50)
    external_ref: Template | None = Field(
        default="{{ trigger_id }}",
        description="the same reference on the same channel finds the existing case: a "
        "replayed or repeated item never makes a second case",
    )
    channel: Code = "workflow"


class AddComment(_Step):
    kind: Literal["add_comment"]
    case: Template = Field(description="the case's id, e.g. `{{ steps.open.id }}`")
    body: Template
    public: bool = True
    author_email: Template | None = Field(default=None, description="a customer's reply")


class UpdateCase(_Step):
    kind: Literal["update_case"]
    case: Template
    title: Template | None = None
    priority: Template | None = None
    tags: list[Template] | None = None
    form: TemplateTree = None


class ApplyAction(_Step):
    kind: Literal["apply_action"]
    case: Template
    action: Template


class ConnectorAction(_Step):
    kind: Literal["connector_action"]
    connection_id: uuid.UUID
    action: Code
    input: TemplateTree = Field(default_factory=dict)


class HttpRequest(_Step):
    kind: Literal["http_request"]
    connection_id: uuid.UUID | None = Field(
        default=None, description="whose base URL and auth it uses; none: an absolute URL"
    )
    request: RequestTemplate


Step = Annotated[
    Union[CreateCase, AddComment, UpdateCase, ApplyAction, ConnectorAction, HttpRequest],  # noqa: UP007
    Field(discriminator="kind"),
]


class WorkflowSpec(_Part):
    name: str = Field(min_length=1, max_length=200)
    trigger: TriggerRef
    filter: Condition = Field(default_factory=lambda: AllOf(all=[]))
    steps: list[Step] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _unique_names(self) -> WorkflowSpec:
        names = [step.name for step in self.steps]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"steps: each step needs its own name; repeated: {repeated}")
        return self

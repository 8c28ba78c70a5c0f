"""What a workflow says: its trigger, a filter, and the steps each item goes through.

trigger → enrich (the trigger's enricher, when it has one) → filter → steps. Step fields are
templates (``integrations.expressions``) over ``trigger`` (the item, enriched), ``steps``
(earlier steps' outputs by name), ``execution`` (its id, the workflow's code, the version)
and ``trigger_id`` (the item's id at its source). The filter is the condition language of
event rules (all / any / comparisons, evaluated by ``automation.conditions.holds``) over
``trigger.*``; a step's ``when`` may also look at ``steps.*``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    WrapValidator,
    model_validator,
)

from casedesk.domain.automation.conditions import (
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    holds,
    without_tags,
)
from casedesk.domain.events import EVENTS
from casedesk.integrations.expressions import check_template, templates_of
from casedesk.integrations.manifests.common import Code, RequestTemplate, Template
from casedesk.kit.values import JsonObject, JsonValue

EXECUTION = "execution"
EXECUTION_FAILED = EVENTS.declare(
    "execution.failed",
    EXECUTION,
    "a workflow execution failed for good (a final error, or its retries ran out)",
    ("workflow", "version", "error"),
).name
TEMPLATE_MAX_CHARS = 4096
"""Characters of one template, wherever it stands."""
CONTEXT_NAMES = frozenset({"trigger", "steps", "execution", "trigger_id"})
"""What every template of a workflow sees."""
CONNECTION_NAMES = frozenset({"connection", "secrets"})
"""What an HTTP request step's templates see besides, when it uses a connection."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _mapping_templates(tree: Any) -> Any:
    for at, text in templates_of(tree):
        if len(text) > TEMPLATE_MAX_CHARS:
            where = f" at {at}" if at else ""
            raise ValueError(f"a template{where} has {len(text)} characters; at most 4096")
        check_template(text)
    return tree


MappingTree = Annotated[JsonValue, AfterValidator(_mapping_templates)]
"""A JSON value whose strings are templates (a form, an action's input, a request body),
bounded as every free-form value of the API is."""


# --- conditions over the item and the steps -----------------------------------------------

ItemPath = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z_]{1,20}(\.[A-Za-z0-9_$@:-]{1,100}){1,10}$"),
]
"""``trigger.body.status``, ``steps.open.number``; segments may hold ``-`` (header names)."""
ItemOp = Literal["eq", "ne", "in", "not_in", "contains", "gt", "gte", "lt", "lte", "is_empty"]
"""The operators of rule conditions that compare a value (an item has no changes)."""


class ItemComparison(_Part):
    field: ItemPath
    op: ItemOp
    value: JsonValue = None


class ItemAllOf(_Part):
    all: list[ItemCondition] = Field(max_length=50)


class ItemAnyOf(_Part):
    any: list[ItemCondition] = Field(max_length=50)


def _kind(value: Any) -> str:
    if isinstance(value, ItemAllOf | ItemAnyOf | ItemComparison):
        return {ItemAllOf: "all", ItemAnyOf: "any", ItemComparison: "comparison"}[type(value)]
    keys = value.keys() if isinstance(value, dict) else ()
    if "all" in keys:
        return "all"
    return "any" if "any" in keys else "comparison"


ItemCondition = Annotated[  # a recursive alias needs Union
    Union[  # noqa: UP007
        Annotated[ItemAllOf, Tag("all")],
        Annotated[ItemAnyOf, Tag("any")],
        Annotated[ItemComparison, Tag("comparison")],
    ],
    Discriminator(_kind),
    WrapValidator(without_tags),
]
ItemAllOf.model_rebuild()
ItemAnyOf.model_rebuild()


def item_comparisons(condition: ItemCondition, at: str) -> Iterator[tuple[str, ItemComparison]]:
    """Every comparison of the tree, with where it stands (``filter.all.0``, ...)."""
    if isinstance(condition, ItemAllOf):
        for index, part in enumerate(condition.all):
            yield from item_comparisons(part, f"{at}.all.{index}")
    elif isinstance(condition, ItemAnyOf):
        for index, part in enumerate(condition.any):
            yield from item_comparisons(part, f"{at}.any.{index}")
    else:
        yield at, condition


def _as_rule_condition(condition: ItemCondition) -> Condition:
    """The same tree in the rule conditions' own types, for their evaluator. The fields were
    validated by this module's types, so the rules' (case.*, customer.*) are not asked."""
    if isinstance(condition, ItemAllOf):
        return AllOf.model_construct(all=[_as_rule_condition(part) for part in condition.all])
    if isinstance(condition, ItemAnyOf):
        return AnyOf.model_construct(any=[_as_rule_condition(part) for part in condition.any])
    return Comparison.model_construct(field=condition.field, op=condition.op, value=condition.value)


def passes(condition: ItemCondition, facts: dict[str, Any]) -> bool:
    """Whether the condition holds over ``facts`` (``{"trigger": …, "steps": …}``)."""
    return holds(_as_rule_condition(condition), facts, {})


def always() -> ItemAllOf:
    return ItemAllOf(all=[])


# --- the trigger and the steps ------------------------------------------------------------


class TriggerRef(_Part):
    connection_id: uuid.UUID | None = Field(
        default=None, description="the connection the trigger uses (none for a plain webhook)"
    )
    connector: Code = Field(description="the connector's id, e.g. `webhook`")
    trigger: Code = Field(description="the connector's trigger, e.g. `delivery`")
    settings: JsonObject = Field(
        default_factory=dict, description="the trigger's settings, as its manifest describes"
    )


class _Step(_Part):
    name: Code = Field(description="how later steps name its output: `steps.<name>`")
    when: ItemCondition | None = Field(
        default=None, description="the step runs only if this holds (over trigger.*, steps.*)"
    )


class CreateCase(_Step):
    kind: Literal["create_case"]
    template: Template
    title: Template
    description: Template | None = None
    priority: Template | None = None
    queue: Template | None = None
    customer_email: Template | None = None
    customer_name: Template | None = None
    form: MappingTree = Field(default_factory=dict)
    tags: list[Template] = Field(default_factory=list, max_length=50)
    external_ref: Template | None = Field(
        default="{{ execution.workflow }}:{{ trigger_id }}",
        description="the same reference on the same channel finds the existing case: a "
        "replayed or repeated item never makes a second case. The default is the item's id "
        "at its source, behind the workflow's code, so two workflows whose sources number "
        "their items alike never share a case",
    )
    channel: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{0,62}$")] = "workflow"


class AddComment(_Step):
    kind: Literal["add_comment"]
    case: Template = Field(description="the case's id, e.g. `{{ steps.open.id }}`")
    body: Template
    public: bool = True
    author_email: Template | None = Field(default=None, description="a customer's reply")


class ReceiveMessage(_Step):
    """A channel's message (the trigger's entity, made a ChannelMessage by its connector)
    threaded by the rules of ``domain.channels``: it opens a case, comments on one, reopens
    a closed one or opens a follow-up, or is recognised as a repeat, casedesk's own or
    automatic mail."""

    kind: Literal["receive_message"]
    template: Template = Field(description="the template of the cases it opens")
    queue: Template | None = None
    priority: Template | None = None
    tags: list[Template] = Field(default_factory=list, max_length=50)
    on_closed: Literal["reopen", "follow_up"] = Field(
        default="reopen",
        description="a message in the thread of a closed case reopens it when its state "
        "machine has a reopening action from there (else, or with `follow_up`, it opens a new "
        "case whose parent is the closed one)",
    )


class UpdateCase(_Step):
    kind: Literal["update_case"]
    case: Template
    title: Template | None = None
    priority: Template | None = None
    tags: list[Template] | None = Field(default=None, max_length=50)
    form: MappingTree = None


class ApplyAction(_Step):
    kind: Literal["apply_action"]
    case: Template
    action: Template


class ConnectorAction(_Step):
    kind: Literal["connector_action"]
    connection_id: uuid.UUID
    action: Code
    input: MappingTree = Field(default_factory=dict)


class HttpCall(_Part):
    """One HTTP request; every string of it a template."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: Template = Field(
        description="relative to the connection's base URL, or an absolute http(s) URL"
    )
    query: dict[str, Template] = Field(default_factory=dict, max_length=50)
    headers: dict[str, Template] = Field(default_factory=dict, max_length=50)
    json_body: MappingTree = Field(default=None, alias="json")
    form: dict[str, Template] | None = Field(default=None, max_length=50)

    def as_request(self) -> RequestTemplate:
        return RequestTemplate.model_validate(self.model_dump(by_alias=True))


class HttpRequest(_Step):
    kind: Literal["http_request"]
    connection_id: uuid.UUID | None = Field(
        default=None, description="whose base URL and auth it uses; none: an absolute URL"
    )
    request: HttpCall


Step = Annotated[
    Union[  # noqa: UP007
        CreateCase,
        AddComment,
        ReceiveMessage,
        UpdateCase,
        ApplyAction,
        ConnectorAction,
        HttpRequest,
    ],
    Field(discriminator="kind"),
]
CASE_STEPS = frozenset(
    {"create_case", "add_comment", "receive_message", "update_case", "apply_action"}
)
"""Steps that change a case, through its activity, in one transaction with their record."""


class WorkflowSpec(_Part):
    name: str = Field(min_length=1, max_length=200)
    trigger: TriggerRef
    filter: ItemCondition = Field(
        default_factory=always, description="the item goes on only if this holds (trigger.*)"
    )
    steps: list[Step] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _unique_names(self) -> WorkflowSpec:
        names = [step.name for step in self.steps]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"steps: each step needs its own name; repeated: {repeated}")
        return self

    def definition(self) -> dict[str, Any]:
        """The JSON form kept as a draft and as a published version (a subclass's own
        fields, such as the code of the API's body, are not part of it)."""
        return self.model_dump(mode="json", by_alias=True, include=set(WorkflowSpec.model_fields))


# --- what templates name ------------------------------------------------------------------

_PARSER = SandboxedEnvironment()
"""Only parses: templates are rendered by ``integrations.expressions``, in its sandbox."""
GLOBAL_NAMES = frozenset(_PARSER.globals)
"""What the template language itself offers (``range``, ``dict``, …)."""


def is_literal(text: str) -> bool:
    """A template without any expression or statement: it renders as it is written."""
    return not any(mark in text for mark in ("{{", "{%", "{#"))


def names_in(text: str) -> tuple[set[str], set[str]]:
    """The names a template reads (``trigger``, ``steps``, …) and the steps it names
    (``steps.open.id`` and ``steps["open"]`` name ``open``)."""
    try:
        tree = _PARSER.parse(text)
    except TemplateSyntaxError:
        return set(), set()  # refused when the template was checked
    read = set(meta.find_undeclared_variables(tree)) - GLOBAL_NAMES
    steps: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr) and _is_steps(node.node):
            steps.add(node.attr)
        elif isinstance(node, nodes.Getitem) and _is_steps(node.node):
            key = node.arg
            if isinstance(key, nodes.Const) and isinstance(key.value, str):
                steps.add(key.value)
    return read, steps


def _is_steps(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "steps"


_NOT_TEMPLATES = frozenset(
    {"name", "kind", "when", "connection_id", "action", "channel", "on_closed"}
)


def step_templates(step: BaseModel) -> list[tuple[str, str]]:
    """Every template of a step, with where it stands in the step (``form.order``).

    ``connector_action.action`` is a code, not a template; ``apply_action.action`` is one."""
    dumped = step.model_dump(mode="json", by_alias=True)
    skipped = _NOT_TEMPLATES - ({"action"} if isinstance(step, ApplyAction) else set())
    found: list[tuple[str, str]] = []
    for key, value in dumped.items():
        if key in skipped or value is None:
            continue
        for at, text in templates_of(value):
            found.append((f"{key}.{at}" if at else key, text))
    return found

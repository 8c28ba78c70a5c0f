"""Rule conditions: an all/any tree of comparisons over a case and the event's changes.

Field names are paths: ``case.priority``, ``case.form.order_id``, ``case.tags``,
``customer.domain``, ``event.type``, ``event.metric``, ``actor.type``. The change operators
(``changed``, ``changed_to``, ``changed_from``) look at what the event says changed: the fields
of ``case.updated``, ``state`` for ``case.state_changed`` and ``queue_id``/``assignee_id`` for
transfers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from casedesk.kit.values import JsonValue

Op = Literal[
    "eq",
    "ne",
    "in",
    "not_in",
    "contains",
    "gt",
    "gte",
    "lt",
    "lte",
    "is_empty",
    "changed",
    "changed_to",
    "changed_from",
]
FieldPath = Annotated[
    str,
    StringConstraints(pattern=r"^(case|customer|event|actor)(\.[A-Za-z0-9_]{1,63}){1,3}$"),
]
CASE_FIELDS = frozenset(
    {
        "id",
        "number",
        "title",
        "state",
        "closed",
        "priority",
        "queue_id",
        "assignee_id",
        "customer_id",
        "template_id",
        "channel",
        "tags",
        "form",
        "version",
    }
)
"""What ``case.*`` can name: the case as events carry it (``case.form.<key>`` below form)."""
CUSTOMER_FIELDS = frozenset({"id", "email", "name", "domain"})
"""What ``customer.*`` can name: the case's customer; ``domain`` is the e-mail's domain."""
ACTOR_FIELDS = frozenset({"type", "id"})


class Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: FieldPath
    op: Op
    value: JsonValue = None


class AllOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    all: list[Condition] = Field(max_length=50)


class AnyOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    any: list[Condition] = Field(max_length=50)


def _kind(value: Any) -> str:
    """Which variant a condition is, so that a bad one gets the errors of that variant only."""
    if isinstance(value, AllOf | AnyOf | Comparison):
        return {AllOf: "all", AnyOf: "any", Comparison: "comparison"}[type(value)]
    keys = value.keys() if isinstance(value, dict) else ()
    if "all" in keys:
        return "all"
    return "any" if "any" in keys else "comparison"


_TAGS = ("all", "any", "comparison")


def without_tags(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Errors name where they are (``conditions.all.0.op``), not the variant tried: the
    wrap validator of every union of conditions (a rule's, a workflow's filter)."""
    try:
        return handler(value)
    except ValidationError as exc:
        errors = [
            InitErrorDetails(
                type=PydanticCustomError(error["type"], error["msg"], error.get("ctx")),
                loc=tuple(error["loc"][1:] if error["loc"][:1] in _TAGS_LOC else error["loc"]),
                input=error["input"],
            )
            for error in exc.errors()
        ]
        raise ValidationError.from_exception_data(exc.title, errors) from None


_TAGS_LOC = tuple((tag,) for tag in _TAGS)
Condition = Annotated[  # a recursive alias needs Union
    Union[  # noqa: UP007
        Annotated[AllOf, Tag("all")],
        Annotated[AnyOf, Tag("any")],
        Annotated[Comparison, Tag("comparison")],
    ],
    Discriminator(_kind),
    WrapValidator(without_tags),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()

_MISSING = object()


def comparisons(condition: Condition) -> Iterator[tuple[str, Comparison]]:
    """Every comparison of the tree, with where it stands (``conditions.all.0``, ...)."""

    def walk(node: Condition, at: str) -> Iterator[tuple[str, Comparison]]:
        if isinstance(node, AllOf):
            for index, part in enumerate(node.all):
                yield from walk(part, f"{at}.all.{index}")
        elif isinstance(node, AnyOf):
            for index, part in enumerate(node.any):
                yield from walk(part, f"{at}.any.{index}")
        else:
            yield at, node

    return walk(condition, "conditions")


def unknown_field(field: str, event_fields: frozenset[str]) -> str | None:
    """Why ``field`` names nothing a rule can see, or None when it names something."""
    root, _, rest = field.partition(".")
    name = rest.split(".")[0]
    known = {
        "case": CASE_FIELDS,
        "customer": CUSTOMER_FIELDS,
        "actor": ACTOR_FIELDS,
        "event": event_fields,
    }[root]
    if name not in known:
        return f"{field} names no field; {root}.* has {', '.join(sorted(known))}"
    if "." in rest and not (root == "case" and name == "form"):
        return f"{field}: only case.form has fields below it"
    return None


def _lookup(facts: dict[str, Any], path: str) -> Any:
    value: Any = facts
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def changes_of(event_type: str, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What the event says changed, as field → {from, to}."""
    if event_type == "case.updated":
        return dict(data.get("changes", {}))
    if event_type == "case.state_changed":
        return {"state": {"from": data.get("from"), "to": data.get("to")}}
    if event_type == "case.transferred":
        before, after = data.get("from", {}), data.get("to", {})
        return {
            key: {"from": before.get(key), "to": after.get(key)}
            for key in ("queue_id", "assignee_id")
            if before.get(key) != after.get(key)
        }
    return {}


def _compare(op: str, actual: Any, expected: Any) -> bool:
    try:
        match op:
            case "eq":
                return bool(actual == expected)
            case "ne":
                return bool(actual != expected)
            case "in":
                return actual in expected
            case "not_in":
                return actual not in expected
            case "contains":
                return expected in actual
            case "gt":
                return bool(actual > expected)
            case "gte":
                return bool(actual >= expected)
            case "lt":
                return bool(actual < expected)
            case "lte":
                return bool(actual <= expected)
    except TypeError:
        return False
    return False


def holds(condition: Condition, facts: dict[str, Any], changes: dict[str, dict[str, Any]]) -> bool:
    if isinstance(condition, AllOf):
        return all(holds(c, facts, changes) for c in condition.all)
    if isinstance(condition, AnyOf):
        return any(holds(c, facts, changes) for c in condition.any)
    field = condition.field.removeprefix("case.")
    change = changes.get(field) if condition.field.startswith("case.") else None
    match condition.op:
        case "changed":
            return change is not None
        case "changed_to":
            return change is not None and change.get("to") == condition.value
        case "changed_from":
            return change is not None and change.get("from") == condition.value
    actual = _lookup(facts, condition.field)
    if condition.op == "is_empty":
        return actual is _MISSING or actual in (None, "", [], {})
    if actual is _MISSING:
        return False
    return _compare(condition.op, actual, condition.value)

"""Rule conditions: an all/any tree of comparisons over a case and the event's changes.

Field names are paths: ``case.priority``, ``case.form.order_id``, ``case.tags``,
``event.type``, ``actor.type``. The change operators (``changed``, ``changed_to``,
``changed_from``) look at what the event says changed: the fields of ``case.updated``,
``state`` for ``case.state_changed`` and ``queue_id``/``assignee_id`` for transfers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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
    str, StringConstraints(pattern=r"^(case|event|actor)(\.[A-Za-z0-9_]{1,63}){1,3}$")
]


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


Condition = Union[AllOf, AnyOf, Comparison]  # noqa: UP007 - a recursive alias needs Union
AllOf.model_rebuild()
AnyOf.model_rebuild()

_MISSING = object()


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

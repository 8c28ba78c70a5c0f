"""A template's form on a page: the fields of its JSON Schema as inputs, and the posted
values read back into the types the schema names. The schema itself validates (in the
create activity); this only turns text from a form into JSON values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from casedesk.kit.errors import InvalidInput
from casedesk.kit.values import INT64_MAX

PREFIX = "form."


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    kind: str
    """text, textarea, number, integer, checkbox or choice"""
    required: bool
    choices: tuple[str, ...] = ()
    description: str | None = None

    @property
    def input_name(self) -> str:
        return PREFIX + self.name


def fields_of(schema: Mapping[str, Any]) -> list[Field]:
    """The top-level properties a person can fill in, in the schema's order; nested
    objects and arrays are left to the API."""
    required = set(schema.get("required") or ())
    found: list[Field] = []
    for name, spec in (schema.get("properties") or {}).items():
        if not isinstance(spec, dict):
            continue
        kind = _kind(spec)
        if kind is None:
            continue
        found.append(
            Field(
                name=name,
                label=str(spec.get("title") or name.replace("_", " ").capitalize()),
                kind=kind,
                required=name in required,
                choices=tuple(str(choice) for choice in spec.get("enum") or ()),
                description=spec.get("description"),
            )
        )
    return found


def _kind(spec: Mapping[str, Any]) -> str | None:
    if "enum" in spec:
        return "choice"
    kind = spec.get("type")
    if kind == "string":
        return "textarea" if (spec.get("maxLength") or 0) > 200 else "text"
    if kind in ("number", "integer", "boolean"):
        return "checkbox" if kind == "boolean" else str(kind)
    return None


def values_of(
    fields: list[Field], posted: Mapping[str, Any], *, clear_empty: bool = False
) -> dict[str, Any]:
    """The form's JSON from posted text, numbers as numbers (a number that is none is a
    422 naming the field). An empty field is left out, or, with ``clear_empty`` (a change
    to a case's form, which is merged), set to None, which removes it."""
    values: dict[str, Any] = {}
    for field in fields:
        raw = str(posted.get(field.input_name, "")).strip()
        if field.kind == "checkbox":
            if field.input_name in posted:
                values[field.name] = True
            elif clear_empty:
                values[field.name] = None
            continue
        if not raw:
            if clear_empty:
                values[field.name] = None
            continue
        if field.kind in ("number", "integer"):
            values[field.name] = _number(field, raw)
        else:
            values[field.name] = raw
    return values


def _number(field: Field, raw: str) -> int | float:
    try:
        number: int | float = int(raw) if field.kind == "integer" else float(raw)
    except ValueError:
        raise InvalidInput(f"{field.label}: not a number", field=field.name) from None
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidInput(f"{field.label}: not a number", field=field.name)
    if isinstance(number, int) and not -(2**63) <= number <= INT64_MAX:
        raise InvalidInput(f"{field.label}: too large a number", field=field.name)
    return number

"""Case form data validated against its template's JSON Schema (draft 2020-12)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from casedesk.kit.errors import InvalidInput


def _path(prefix: str, parts: Any) -> str:
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def check_form_schema(schema: dict[str, Any]) -> None:
    """Refuse a schema that is not valid JSON Schema, naming where it is wrong."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        field = _path("form_schema", exc.absolute_path)
        raise InvalidInput(
            f"form_schema is not a valid JSON Schema: {exc.message}",
            field=field,
            errors=[{"field": field, "message": exc.message, "type": "json_schema"}],
        ) from None
    if schema.get("type", "object") != "object":
        raise InvalidInput("form_schema must describe an object", field="form_schema.type")
    _check_references(schema)


_SELF = "urn:casedesk:form"
# No retrieval: a reference outside the schema itself is never fetched from anywhere.
_NO_REMOTE = Registry()


def _references(node: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(node, dict):
        found = [(path + ".$ref", node["$ref"])] if isinstance(node.get("$ref"), str) else []
        for key, value in node.items():
            found += _references(value, f"{path}.{key}")
        return found
    if isinstance(node, list):
        return [ref for i, item in enumerate(node) for ref in _references(item, f"{path}[{i}]")]
    return []


def _check_references(schema: dict[str, Any]) -> None:
    """Only references inside the schema (``#/...``) that resolve are allowed."""
    resolver = _NO_REMOTE.with_resource(_SELF, DRAFT202012.create_resource(schema)).resolver(
        base_uri=_SELF
    )
    for field, ref in _references(schema, "form_schema"):
        if not ref.startswith("#"):
            raise InvalidInput(
                f"only references inside the schema (#/...) are allowed, not {ref!r}", field=field
            )
        try:
            resolver.lookup(ref)
        except Unresolvable:
            raise InvalidInput(f"reference {ref!r} points at nothing", field=field) from None


def validate_form(schema: dict[str, Any], form: dict[str, Any]) -> None:
    """Raise one 422 naming every failing field path of ``form``."""
    validator = Draft202012Validator(schema, registry=_NO_REMOTE)
    errors = sorted(validator.iter_errors(form), key=lambda error: list(error.absolute_path))
    if not errors:
        return
    details = [
        {
            "field": _path("form", error.absolute_path) + _missing(error),
            "message": error.message,
            "type": f"json_schema.{error.validator}",
        }
        for error in errors
    ]
    fields = ", ".join(detail["field"] for detail in details)
    raise InvalidInput(f"the form is invalid at {fields}", field="form", errors=details)


def _missing(error: Any) -> str:
    """For a missing required property, point at the property, not at its parent."""
    if error.validator == "required" and error.message.startswith("'"):
        return "." + str(error.message.split("'")[1])
    return ""

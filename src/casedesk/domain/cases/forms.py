"""Case form data validated against its template's JSON Schema (draft 2020-12).

A tenant admin writes the schema, and validation runs on the shared event loop, so its
regular expressions (``pattern``, ``patternProperties``) run on RE2, which takes time linear
in the text and cannot backtrack: no pattern stalls the process, however it is written. A
pattern RE2 cannot run (backreferences, lookaround) is refused when the template is saved.
``unevaluatedProperties`` would match ``patternProperties`` with Python's backtracking
``re`` inside jsonschema, so a schema may not use both.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from casedesk.kit.errors import InvalidInput

_SELF = "urn:casedesk:form"
# No retrieval: a reference outside the schema itself is never fetched from anywhere.
_NO_REMOTE = Registry()

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the admin's 422, not a line on stderr


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> Any:
    return re2.compile(pattern, options=_RE2_OPTIONS)


def _matches(pattern: str, text: str) -> bool:
    return _regex(pattern).search(text) is not None


def _re2_refusal(pattern: str) -> str | None:
    """Why RE2 cannot run ``pattern``, or None if it can."""
    try:
        _regex(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    return None


# jsonschema's own keywords, with the patterns matched by RE2 instead of Python's ``re``.


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _matches(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            if _matches(pattern, name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    named = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = [
        name
        for name in instance
        if name not in named and not any(_matches(pattern, name) for pattern in patterns)
    ]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
        return
    if additional or not extras:
        return
    if patterns:
        verb = "does" if len(extras) == 1 else "do"
        joined = ", ".join(repr(each) for each in sorted(extras))
        listed = ", ".join(repr(each) for each in sorted(patterns))
        yield ValidationError(f"{joined} {verb} not match any of the regexes: {listed}")
        return
    verb = "was" if len(extras) == 1 else "were"
    joined = ", ".join(repr(each) for each in sorted(extras, key=str))
    yield ValidationError(f"Additional properties are not allowed ({joined} {verb} unexpected)")


# The validator's keyword functions get the concrete validator (``descend`` is not in the
# protocol), and ``extend`` is untyped.
_FormValidator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)

_ONE_SUBSCHEMA = (
    "items",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
)
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_NAMED_SUBSCHEMAS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def _subschemas(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object inside ``schema`` (itself included), with its field path."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for keyword in _ONE_SUBSCHEMA:
        yield from _subschemas(schema.get(keyword), f"{path}.{keyword}")
    for keyword in _SUBSCHEMA_LISTS:
        listed = schema.get(keyword)
        for index, item in enumerate(listed if isinstance(listed, list) else []):
            yield from _subschemas(item, f"{path}.{keyword}[{index}]")
    for keyword in _NAMED_SUBSCHEMAS:
        named = schema.get(keyword)
        for name, item in (named if isinstance(named, dict) else {}).items():
            yield from _subschemas(item, f"{path}.{keyword}.{name}")


def _reachable_subschemas(
    schema: dict[str, Any], at: str = "form_schema"
) -> list[tuple[str, dict[str, Any]]]:
    """Every schema object validation may apply: those in their places, then whatever a
    ``$ref`` points at elsewhere in the document (named by the path of the reference)."""
    found = list(_subschemas(schema, at))
    seen = {id(node) for _, node in found}
    resolver = _NO_REMOTE.with_resource(_SELF, DRAFT202012.create_resource(schema)).resolver(
        base_uri=_SELF
    )
    waiting = list(found)
    while waiting:
        path, node = waiting.pop()
        ref = node.get("$ref")
        if not isinstance(ref, str):
            continue
        try:
            target = resolver.lookup(ref).contents
        except Unresolvable:
            continue  # refused as a reference that points at nothing
        for sub_path, sub in _subschemas(target, f"{path}.$ref"):
            if id(sub) not in seen:  # a recursive schema refers back to what was walked
                seen.add(id(sub))
                found.append((sub_path, sub))
                waiting.append((sub_path, sub))
    return found


def _pattern_problems(schema: dict[str, Any], at: str = "form_schema") -> list[dict[str, str]]:
    """Each pattern of the schema RE2 cannot run, and ``unevaluatedProperties`` beside
    ``patternProperties``, as error details naming the field."""
    problems: list[dict[str, str]] = []
    unevaluated: list[str] = []
    has_pattern_properties = False
    for path, node in _reachable_subschemas(schema, at):
        places = [(f"{path}.pattern", node.get("pattern"))]
        pattern_properties = node.get("patternProperties")
        if isinstance(pattern_properties, dict):
            has_pattern_properties = True
            places += [(f"{path}.patternProperties.{p}", p) for p in pattern_properties]
        for field, pattern in places:
            why = _re2_refusal(pattern) if isinstance(pattern, str) else None
            if why is not None:
                message = (
                    f"this pattern cannot be run by RE2 ({why}); form patterns may not use"
                    " backreferences or lookaround, so that none can backtrack"
                )
                problems.append({"field": field, "message": message, "type": "regex"})
        if "unevaluatedProperties" in node:
            unevaluated.append(f"{path}.unevaluatedProperties")
    if has_pattern_properties:
        message = "unevaluatedProperties cannot be used with patternProperties in a form"
        problems += [{"field": field, "message": message, "type": "regex"} for field in unevaluated]
    return problems


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
    problems = _pattern_problems(schema)
    if problems:
        first = problems[0]
        raise InvalidInput(
            f"form_schema: {first['field']}: {first['message']}",
            field=first["field"],
            errors=problems,
        )


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
    problems = _reference_problems(schema, "form_schema")
    if problems:
        raise InvalidInput(problems[0]["message"], field=problems[0]["field"])


def _reference_problems(schema: dict[str, Any], at: str) -> list[dict[str, str]]:
    resolver = _NO_REMOTE.with_resource(_SELF, DRAFT202012.create_resource(schema)).resolver(
        base_uri=_SELF
    )
    problems = []
    for field, ref in _references(schema, at):
        if not ref.startswith("#"):
            message = f"only references inside the schema (#/...) are allowed, not {ref!r}"
            problems.append({"field": field, "message": message, "type": "json_schema.$ref"})
            continue
        try:
            resolver.lookup(ref)
        except Unresolvable:
            message = f"reference {ref!r} points at nothing"
            problems.append({"field": field, "message": message, "type": "json_schema.$ref"})
    return problems


def schema_problems(schema: dict[str, Any], at: str) -> list[dict[str, str]]:
    """What keeps ``schema`` from checking values safely, each naming its place under ``at``:
    not JSON Schema, a reference that leaves it or points at nothing, a pattern RE2 cannot
    run. A schema without problems can be given to ``validate_form``."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        field = _path(at, exc.absolute_path)
        return [{"field": field, "message": exc.message, "type": "json_schema"}]
    return _reference_problems(schema, at) or _pattern_problems(schema, at)


@dataclass(frozen=True, slots=True)
class _Compiled:
    validator: Any
    refused: list[dict[str, str]]
    """what keeps the schema from being checked safely (a template saved before patterns
    ran on RE2); empty when it can be"""


VALIDATORS_KEPT = 512
"""How many compiled form schemas a process keeps, the least recently used going first."""
_compiled: OrderedDict[bytes, _Compiled] = OrderedDict()


def _compiled_for(schema: dict[str, Any]) -> _Compiled:
    """The schema's validator, compiled once per process and schema.

    The cache is keyed by the schema's canonical JSON, not by the template: an edited
    schema is a new key, so no edit is ever missed and no template, of any tenant, is
    checked against a schema other than its own."""
    try:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # not plain JSON (an integer beyond 64 bits): not kept
        return _Compiled(_FormValidator(schema, registry=_NO_REMOTE), _pattern_problems(schema))
    found = _compiled.get(key)
    if found is not None:
        _compiled.move_to_end(key)
        return found
    own = orjson.loads(key)  # the validator keeps its own copy, which nobody can change
    found = _compiled[key] = _Compiled(
        _FormValidator(own, registry=_NO_REMOTE), _pattern_problems(own)
    )
    if len(_compiled) > VALIDATORS_KEPT:
        _compiled.popitem(last=False)
    return found


def validate_form(schema: dict[str, Any], form: dict[str, Any], *, field: str = "form") -> None:
    """Raise one 422 naming every failing field path of ``form`` (under ``field``)."""
    compiled = _compiled_for(schema)
    refused = compiled.refused
    if refused:  # a template saved before patterns ran on RE2
        raise InvalidInput(
            f"the template's form schema cannot be checked safely ({refused[0]['field']}:"
            f" {refused[0]['message']}); an admin must save the template again",
            field="form",
        )
    validator = compiled.validator
    try:
        errors = sorted(validator.iter_errors(form), key=lambda error: list(error.absolute_path))
    except re2.error:  # a pattern reached in a way the check above does not foresee
        raise InvalidInput(
            "the template's form schema has a pattern RE2 cannot run; an admin must save the"
            " template again",
            field=field,
        ) from None
    if not errors:
        return
    details = [
        {
            "field": _path(field, error.absolute_path) + _missing(error),
            "message": error.message,
            "type": f"json_schema.{error.validator}",
        }
        for error in errors
    ]
    fields = ", ".join(detail["field"] for detail in details)
    raise InvalidInput(f"the {field} value is invalid at {fields}", field=field, errors=details)


def _missing(error: Any) -> str:
    """For a missing required property, point at the property, not at its parent."""
    if error.validator == "required" and error.message.startswith("'"):
        return "." + str(error.message.split("'")[1])
    return ""

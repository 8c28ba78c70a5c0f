"""Form patterns run on RE2: they never backtrack, and the form errors stay jsonschema's."""

from __future__ import annotations

import time
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from casedesk.domain.cases.forms import check_form_schema, validate_form
from casedesk.kit.errors import InvalidInput

CATASTROPHIC = "^(a+)+$"
"""Python's ``re`` takes time exponential in the length of a near miss such as 'aaa…a!'."""
NEAR_MISS = "a" * 28 + "!"  # about ten seconds with a backtracking engine


def _errors(schema: dict[str, Any], form: dict[str, Any]) -> list[tuple[str, str, str]]:
    try:
        validate_form(schema, form)
    except InvalidInput as refused:
        return [(e["field"], e["message"], e["type"]) for e in refused.extra["errors"]]
    return []


def _reference(schema: dict[str, Any], form: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The same form checked by jsonschema's own validator (with Python's ``re``)."""
    errors = sorted(Draft202012Validator(schema).iter_errors(form), key=lambda e: list(e.path))
    fields = ["form" + "".join(f".{part}" for part in e.absolute_path) for e in errors]
    return [
        (f, e.message, f"json_schema.{e.validator}") for f, e in zip(fields, errors, strict=True)
    ]


SAME_AS_JSONSCHEMA = [
    ({"properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}, {"zip": "ABCDE"}),
    ({"properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}, {"zip": "12345"}),
    ({"patternProperties": {"^n_": {"type": "integer"}}}, {"n_a": "x", "n_b": 2, "other": "y"}),
    (
        {"patternProperties": {"^n_": {"type": "integer"}}, "additionalProperties": False},
        {"n_a": 1, "other": "y", "more": 1},
    ),
    ({"properties": {"a": {}}, "additionalProperties": False}, {"a": 1, "b": 2}),
    ({"properties": {"a": {}}, "additionalProperties": False}, {"a": 1, "b": 2, "c": 3}),
    (
        {"patternProperties": {"^x": {}}, "additionalProperties": {"type": "string"}},
        {"x1": 1, "y": 2, "z": "ok"},
    ),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ok": 1, "Not-OK": 2}),
]


@pytest.mark.parametrize(("schema", "form"), SAME_AS_JSONSCHEMA)
def test_the_form_errors_are_jsonschemas_own(schema: dict[str, Any], form: dict[str, Any]) -> None:
    full = {"type": "object"} | schema
    check_form_schema(full)
    assert _errors(full, form) == _reference(full, form)


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"code": {"type": "string", "pattern": CATASTROPHIC}}},
        {"patternProperties": {CATASTROPHIC: {"type": "string"}}, "additionalProperties": False},
        {"properties": {"tags": {"type": "array", "items": {"pattern": CATASTROPHIC}}}},
    ],
)
def test_a_catastrophic_pattern_answers_at_once(schema: dict[str, Any]) -> None:
    full = {"type": "object"} | schema
    check_form_schema(full)
    began = time.perf_counter()
    errors = _errors(full, {"code": NEAR_MISS, NEAR_MISS: 1, "tags": [NEAR_MISS]})
    assert time.perf_counter() - began < 1.0
    assert errors  # the near miss does not match, and says so
    assert {error[2] for error in errors} <= {
        "json_schema.pattern",
        "json_schema.additionalProperties",
    }


@pytest.mark.parametrize(
    ("schema", "field", "why"),
    [
        (
            {"properties": {"code": {"type": "string", "pattern": r"^(a)\1$"}}},
            "form_schema.properties.code.pattern",
            "invalid escape sequence",
        ),
        (
            {"$defs": {"pin": {"pattern": r"^(?=.*\d)"}}},
            "form_schema.$defs.pin.pattern",
            "invalid perl operator",
        ),
        (
            {"patternProperties": {"^(?!x)": {}}},
            "form_schema.patternProperties.^(?!x)",
            "invalid perl operator",
        ),
        (
            {"allOf": [{"properties": {"a": {"items": {"pattern": r"(?<=a)b"}}}}]},
            "form_schema.allOf[0].properties.a.items.pattern",
            "invalid perl operator",
        ),
        (
            {"patternProperties": {"^x": {}}, "unevaluatedProperties": False},
            "form_schema.unevaluatedProperties",
            "unevaluatedProperties cannot be used with patternProperties",
        ),
        (  # a pattern kept outside any keyword, applied through a reference
            {
                "x-shared": {"pin": {"pattern": r"(a)\1"}},
                "properties": {"p": {"$ref": "#/x-shared/pin"}},
            },
            "form_schema.properties.p.$ref.pattern",
            "invalid escape sequence",
        ),
        (  # a recursive schema is walked once
            {
                "$defs": {"node": {"properties": {"kids": {"items": {"$ref": "#/$defs/node"}}}}},
                "properties": {"tree": {"$ref": "#/$defs/node"}, "id": {"pattern": "(?=x)"}},
            },
            "form_schema.properties.id.pattern",
            "invalid perl operator",
        ),
    ],
)
def test_a_pattern_re2_cannot_run_is_refused_naming_the_field(
    schema: dict[str, Any], field: str, why: str
) -> None:
    full = {"type": "object"} | schema
    with pytest.raises(InvalidInput) as refused:
        check_form_schema(full)
    assert refused.value.extra["field"] == field
    [error] = refused.value.extra["errors"]
    assert error["field"] == field
    assert why in error["message"]
    # A template stored before this check cannot run its patterns on Python's re either.
    with pytest.raises(InvalidInput) as unsafe:
        validate_form(full, {})
    assert unsafe.value.extra["field"] == "form"
    assert field in unsafe.value.detail


def test_data_that_looks_like_a_pattern_is_not_one() -> None:
    check_form_schema(
        {
            "type": "object",
            "properties": {"pattern": {"const": {"pattern": r"(a)\1"}, "default": "(?=x)"}},
        }
    )

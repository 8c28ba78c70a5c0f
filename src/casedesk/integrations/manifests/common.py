"""What every part of a manifest is made of: codes, templates, selections and requests."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator, SchemaError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from casedesk.integrations.expressions import check_selection, check_template, templates_of

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]


def _template(text: str) -> str:
    check_template(text)
    return text


def _selection(text: str) -> str:
    check_selection(text)
    return text


def _template_tree(tree: Any) -> Any:
    for _, text in templates_of(tree):
        check_template(text)
    return tree


def _json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
    return schema


Template = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_template)]
"""A Jinja2 string rendered in the sandbox; a lone ``{{ expression }}`` gives its value."""
Selection = Annotated[
    str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_selection)
]
"""A JMESPath expression."""
TemplateTree = Annotated[Any, AfterValidator(_template_tree)]
"""A JSON value whose strings are templates."""
JsonSchema = Annotated[dict[str, Any], AfterValidator(_json_schema)]
OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RequestTemplate(Part):
    """One HTTP request, every string of it a template.

    ``path`` is relative to the connector's base URL, or an absolute http(s) URL (a delta link
    the source handed out, say).
    """

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: Template
    query: dict[str, Template] = Field(default_factory=dict)
    headers: dict[str, Template] = Field(default_factory=dict)
    json_body: TemplateTree = Field(default=None, alias="json")
    form: dict[str, Template] | None = None

"""What a workflow says: templates' names and step references, and its conditions."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from casedesk.domain.workflows import (
    ApplyAction,
    ConnectorAction,
    ItemAllOf,
    WorkflowSpec,
    is_literal,
    names_in,
    passes,
    step_templates,
)


def test_a_template_names_what_it_reads_and_the_steps_it_uses() -> None:
    read, steps = names_in(
        "{{ steps.open.id }} {{ steps['note'].id }} {% for tag in trigger.tags %}{{ tag }}"
        "{% endfor %} {{ range(3) | list }} {{ trigger_id }}"
    )
    assert read == {"steps", "trigger", "trigger_id"}
    assert steps == {"open", "note"}


def test_a_template_without_expressions_is_literal() -> None:
    assert is_literal("question")
    assert not is_literal("{{ trigger.kind }}")
    assert not is_literal("{% if x %}a{% endif %}")


def test_the_filter_compares_fields_of_the_item_however_deep() -> None:
    spec = WorkflowSpec.model_validate(
        {
            "name": "w",
            "trigger": {"connector": "webhook", "trigger": "delivery"},
            "filter": {
                "all": [
                    {"field": "trigger.headers.x-github-event", "op": "eq", "value": "issues"},
                    {
                        "any": [
                            {"field": "trigger.body.issue.labels", "op": "contains", "value": "bug"}
                        ]
                    },
                ]
            },
            "steps": [{"name": "n", "kind": "apply_action", "case": "{{ x }}", "action": "a"}],
        }
    )
    item = {"headers": {"x-github-event": "issues"}, "body": {"issue": {"labels": ["bug"]}}}
    assert passes(spec.filter, {"trigger": item})
    item["body"]["issue"]["labels"] = ["question"]
    assert not passes(spec.filter, {"trigger": item})
    assert passes(ItemAllOf(all=[]), {"trigger": {}})


def test_an_item_has_no_changes_to_compare() -> None:
    with pytest.raises(ValidationError) as refused:
        WorkflowSpec.model_validate(
            {
                "name": "w",
                "trigger": {"connector": "webhook", "trigger": "delivery"},
                "filter": {"field": "trigger.state", "op": "changed"},
                "steps": [{"name": "n", "kind": "apply_action", "case": "x", "action": "a"}],
            }
        )
    assert refused.value.errors()[0]["loc"] == ("filter", "op")


def test_a_steps_templates_leave_out_its_codes() -> None:
    action = ApplyAction(name="a", kind="apply_action", case="{{ steps.o.id }}", action="{{ x }}")
    assert dict(step_templates(action)) == {"case": "{{ steps.o.id }}", "action": "{{ x }}"}
    call = ConnectorAction.model_validate(
        {
            "name": "c",
            "kind": "connector_action",
            "connection_id": "01a234be-0000-7000-8000-000000000001",
            "action": "log",
            "input": {"lines": ["{{ trigger.a }}", "b"]},
        }
    )
    assert dict(step_templates(call)) == {"input.lines.0": "{{ trigger.a }}", "input.lines.1": "b"}

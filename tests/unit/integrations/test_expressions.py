"""Templates and selections: values kept, sandbox held, sizes bounded, errors said."""

from __future__ import annotations

import pytest

from casedesk.integrations.expressions import (
    ExpressionError,
    check_template,
    render,
    render_tree,
    select,
)


def test_a_lone_expression_gives_its_value_and_text_gives_text() -> None:
    context = {"trigger": {"amount": 12.5, "tags": ["a", "b"], "name": "Ann"}}
    assert render("{{ trigger.amount }}", context) == 12.5
    assert render(" {{ trigger.tags }} ", context) == ["a", "b"]
    assert render("Order of {{ trigger.name }}", context) == "Order of Ann"
    assert render_tree({"total": "{{ trigger.amount * 2 }}", "n": 3}, context) == {
        "total": 25.0,
        "n": 3,
    }


def test_a_missing_name_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(ExpressionError, match="undefined"):
        render("{{ trigger.nope }}", {"trigger": {}})


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ trigger.__init__ }}",
        "{{ 'x' * 10000000 }}",
        "{{ 2 ** 100000 }}",
        "{% for i in range(100000000) %}{{ i }}{% endfor %}",
    ],
)
def test_the_sandbox_refuses_what_could_escape_or_exhaust(text: str) -> None:
    with pytest.raises(ExpressionError):
        render(text, {"trigger": {}})


def test_a_template_that_does_not_compile_says_so() -> None:
    with pytest.raises(ExpressionError, match="does not compile"):
        check_template("{{ unclosed")


def test_selections_pick_from_json_and_find_nothing_quietly() -> None:
    data = {"value": [{"id": "1"}, {"id": "2"}], "@odata.deltaLink": "https://x/delta?t=9"}
    assert select("value[].id", data) == ["1", "2"]
    assert select('"@odata.deltaLink"', data) == "https://x/delta?t=9"
    assert select("missing.path", data) is None
    with pytest.raises(ExpressionError, match="does not compile"):
        select("value[", data)


def test_select_json_applies_a_selection_inside_a_template() -> None:
    made = render_tree(
        {"requests": "{{ ids | select_json(\"[].{id: @, url: join('', ['/items/', @])}\") }}"},
        {"ids": ["a", "b"]},
    )
    assert made == {"requests": [{"id": "a", "url": "/items/a"}, {"id": "b", "url": "/items/b"}]}
    assert render("{{ value | select_json('n') }}", {"value": {"n": 3}}) == 3


def test_select_json_with_a_bad_selection_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="does not compile"):
        render("{{ value | select_json('[') }}", {"value": {}})

"""A render of a notification template has a budget of work: nested loops, huge repetitions,
powers, widths and doubling strings are refused as "too much work" (a 422), and an ordinary
template with a loop still renders."""

from __future__ import annotations

import pytest

from casedesk.domain import notifications
from casedesk.domain.notifications import MailTemplate, limits, preview, render
from casedesk.kit.errors import InvalidInput

NESTED = "{% for a in range(1000) %}{% for b in range(1000) %}.{% endfor %}{% endfor %}"


@pytest.mark.parametrize(
    "text",
    [
        NESTED,
        "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
        "{{ 'x' * 10 ** 10 }}",
        "{{ 10 ** 100000000 }}",
        "{{ 'x'|center(10 ** 9) }}",
        "{{ 'x'.ljust(10 ** 9) }}",
        "{{ 'x'|indent(10 ** 9, true) }}\n{{ 'y' }}",
        "{% set ns = namespace(x='x') %}{% for i in range(40) %}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}",
        "{% set ns = namespace(x='x') %}{% for i in range(40) %}"
        "{% set ns.x = ns.x + ns.x %}{% endfor %}",
        "{{ '%999999999d' % 1 }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ (['x' * 100000] * 100000)|join }}",
        "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "{% for i in range(99999) %}{{ 'x' * 99 }}{% endfor %}",
    ],
)
def test_a_template_that_does_too_much_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        notifications.check("invitation", MailTemplate("Join", text))
    assert refused.value.detail.startswith("text: the template does too much work")
    assert refused.value.extra["field"] == "text"


def test_the_budget_is_shared_by_the_fields_of_one_mail() -> None:
    half = "{% for a in range(60000) %}{% endfor %}"
    notifications.check("invitation", MailTemplate("Join", half))  # alone it is within
    with pytest.raises(InvalidInput) as refused:
        notifications.check("invitation", MailTemplate("Join", half, f"<p>{half}</p>"))
    assert refused.value.extra["field"] == "html"


def test_each_mail_has_a_budget_of_its_own() -> None:
    busy = MailTemplate("Join", "{% for a in range(90000) %}{% endfor %}{{ link }}")
    for _ in range(3):
        assert "https://" in preview("invitation", "en", busy).text


def test_ordinary_templates_still_render() -> None:
    text = (
        "{% for n in range(3) %}{{ loop.index }}. {{ user.name|upper }}\n{% endfor %}"
        "{{ '-' * 72 }}\n{{ '%5.2f' % 3.14159 }} {{ '{:>8}'.format(hours) }} {{ 2 ** 10 }}\n"
        "{{ [desk.name, link]|join(' ') }}"
    )
    mail = preview("invitation", "en", MailTemplate("Join {{ desk.name }}", text))
    assert "3. DEE PARK" in mail.text
    assert "-" * 72 in mail.text
    assert " 3.14       72 1024" in mail.text
    assert "Acme Support https://desk.example.com/sign-in/link/abc" in mail.text


def test_large_values_are_not_widths() -> None:
    """A big number that is a value, not a width, is written as any other."""
    text = "{{ '{:,}'.format(n) }} {{ '%d'|format(n) }} {{ n * 1000 }} {{ [n]|sum }}"
    mail = render(
        "portal_sign_in",
        {"desk": {"name": "Acme"}, "link": "https://x", "minutes": 15, "n": 12_345_678},
        MailTemplate("{{ desk.name }}", text),
        language="en",
    )
    assert mail.text == "12,345,678 12345678 12345678000 12345678\n"


def test_the_limits_are_what_the_docs_say() -> None:
    assert (limits.STEPS, limits.SIZE, limits.ARGUMENT) == (100_000, 1_000_000, 100_000)


def test_a_render_past_its_deadline_is_refused() -> None:
    budget = limits.Budget(seconds=-1)  # already late: refused at the next look at the clock

    def spend_all() -> None:
        for _ in range(limits.STEPS):
            budget.step()

    with pytest.raises(limits.TooMuchWork, match="longer than"):
        spend_all()
    assert budget.steps > limits.STEPS - 1_000

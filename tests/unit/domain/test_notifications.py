"""The mail casedesk writes itself: built-in templates in two languages, the case token,
Auto-Submitted, escaping, and drafts that say what is wrong."""

from __future__ import annotations

import pytest

from casedesk.domain import notifications
from casedesk.domain.notifications import KINDS, SPECS, MailTemplate, preview, render
from casedesk.kit.errors import InvalidInput


@pytest.mark.parametrize("language", ["en", "zh-Hans"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_both_languages(kind: notifications.Kind, language: str) -> None:
    mail = preview(kind, language)
    assert mail.subject
    assert "\n" not in mail.subject
    assert mail.text.strip()
    assert mail.html.startswith("<!doctype html>")
    assert mail.auto_submitted == SPECS[kind].auto_submitted
    if SPECS[kind].about_case:
        assert mail.subject.count("[#1042]") == 1
        assert "1042" in mail.text
    if language == "zh-Hans":
        assert any("\u4e00" <= ch <= "\u9fff" for ch in mail.subject + mail.text)


def test_the_links_are_in_the_mail() -> None:
    for kind in ("portal_sign_in", "invitation", "password_reset"):
        mail = preview(kind, "en")  # type: ignore[arg-type]
        link = str(SPECS[kind].sample["link"])  # type: ignore[index]
        assert link in mail.text
        assert link in mail.html
    solved = preview("case_solved", "zh-Hans")
    assert str(SPECS["case_solved"].sample["rating_url"]) in solved.text


def test_only_an_agent_s_reply_is_not_automatic() -> None:
    automatic = {kind for kind in KINDS if SPECS[kind].auto_submitted is not None}
    assert automatic == set(KINDS) - {"agent_reply"}
    assert SPECS["case_received"].auto_submitted == "auto-replied"


def test_a_reply_s_text_is_escaped_in_html_and_kept_in_text() -> None:
    values = dict(SPECS["agent_reply"].sample) | {
        "comment": {"text": "Use <b>bold</b> & <script>x()</script>\n\nBye"}
    }
    mail = render("agent_reply", values, language="en")
    assert "<script>" not in mail.html
    assert "&lt;script&gt;" in mail.html
    assert "<script>x()</script>" in mail.text
    assert mail.html.count("<p>") >= 2


def test_the_case_token_is_added_once() -> None:
    plain = MailTemplate("About {{ case.title }}", "Hi")
    assert render("case_received", SPECS["case_received"].sample, plain, language="en").subject == (
        "About The printer is on fire [#1042]"
    )
    tokened = MailTemplate("[#{{ case.number }}] {{ case.title }}", "Hi")
    subject = render("case_received", SPECS["case_received"].sample, tokened, language="en").subject
    assert subject == "[#1042] The printer is on fire"


def test_a_subject_cannot_carry_a_header() -> None:
    values = dict(SPECS["case_received"].sample) | {
        "case": {"number": 7, "title": "x\r\nBcc: everyone@example.com"}
    }
    subject = render("case_received", values, language="en").subject
    assert "\n" not in subject
    assert "\r" not in subject


def test_a_draft_s_syntax_error_names_its_field_and_line() -> None:
    with pytest.raises(InvalidInput, match=r"text, line 2") as wrong:
        notifications.check("case_received", MailTemplate("ok", "line one\n{% if %}"))
    assert wrong.value.extra["field"] == "text"


def test_an_unknown_variable_is_named_with_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"known: .*case\.number") as wrong:
        notifications.check("case_received", MailTemplate("{{ ticket.id }}", "x"))
    assert wrong.value.extra["field"] == "subject"


def test_the_sandbox_keeps_templates_out_of_python() -> None:
    escape = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(InvalidInput):
        notifications.check("invitation", MailTemplate("s", escape))


def test_languages_are_chosen_as_people_write_them() -> None:
    assert notifications.language_of("zh-CN") == "zh-Hans"
    assert notifications.language_of("zh_Hans") == "zh-Hans"
    assert notifications.language_of("de") == "en"
    assert notifications.language_of(None) == "en"
    assert preview("invitation", "fr").text == preview("invitation", "en").text


@pytest.mark.parametrize(
    "source", ["{{ case.number / 0 }}", "{{ case.title + 1 }}", "{{ [1][5] }}", "{{ int('x') }}"]
)
def test_a_draft_that_fails_when_rendered_is_refused_naming_its_field(source: str) -> None:
    with pytest.raises(InvalidInput, match="text: ") as wrong:
        notifications.check("case_received", MailTemplate("ok", source))
    assert wrong.value.extra["field"] == "text"

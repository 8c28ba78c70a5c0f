"""The screens' languages: every text a template marks is in the Chinese catalog, the
browser's Accept-Language picks the language, and moments show in the user's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from babel.messages.extract import extract_from_dir

from casedesk.web import i18n
from casedesk.web.pages import TEMPLATES

METHOD_MAP = [("**.html", "jinja2")]
OPTIONS = {"**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "True"}}


def _marked() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        TEMPLATES, METHOD_MAP, OPTIONS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_marked_text_has_a_chinese_translation() -> None:
    marked = _marked()
    assert "Sign in" in marked  # the extraction reads the templates
    chinese = i18n.translations("zh-Hans")
    missing = sorted(text for text in marked if chinese.gettext(text) == text)
    assert missing == []


def test_the_server_s_messages_shown_on_screens_are_translated_too() -> None:
    from casedesk.activities.sign_in import LINK_GONE, WRONG
    from casedesk.domain.identity import passwords
    from casedesk.web.cases import (
        CHANGED_FIELDS,
        FIELDS_MATCHED,
        HISTORY_LABELS,
        PRIORITY_LABELS,
        SLA_LABELS,
        SORT_LABELS,
        VIEWS,
    )
    from casedesk.web.portal import FIELDS_ARE_FOR_AGENTS

    chinese = i18n.translations("zh-Hans")
    said = [
        LINK_GONE,
        passwords.password_problem("short", "ann@example.com"),
        passwords.password_problem("x" * 300, "ann@example.com"),
        passwords.password_problem("ann@example.com", "ann@example.com"),
        passwords.password_problem("abababababab", "ann@example.com"),
        "admin",
        "agent",
        "viewer",
        "write the reply first",
        "choose the assignee from the list",
        "no such case",
        "choose what to do with the selected cases",
        "choose the queue from the list",
        "choose the action from the list",
        "write the tag first",
        "select the cases first",
        "the case changed meanwhile; try it again",
    ]
    said += [view.title for view in VIEWS] + list(SORT_LABELS.values())
    said += list(SLA_LABELS.values()) + list(PRIORITY_LABELS.values())
    said += ["pending", "sent", "failed", "running", "paused", "met", "breached"]
    said += list(HISTORY_LABELS.values()) + list(CHANGED_FIELDS.values())
    said += ["processing", "done"]  # a task's status
    said += [*FIELDS_MATCHED.values(), FIELDS_ARE_FOR_AGENTS]
    assert WRONG[0].upper() + WRONG[1:] + "." in _marked()  # the page says the same
    for text in said:
        assert text is not None
        assert chinese.gettext(text) != text, text


@pytest.mark.parametrize(
    ("header", "chosen", "language"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh-Hans"),
        ("en-US,en;q=0.9,zh;q=0.8", None, "en"),
        ("fr-FR,zh-TW;q=0.5", None, "zh-Hans"),
        ("de", None, "en"),
        ("en;q=0.2,zh;q=0.9", None, "zh-Hans"),
        ("zh;q=0", None, "en"),
        (None, None, "en"),
        ("zh-CN", "en", "en"),
        ("en", "zh-Hans", "zh-Hans"),
        ("en", "klingon", "en"),
    ],
)
def test_the_language_follows_the_user_then_the_browser(
    header: str | None, chosen: str | None, language: str
) -> None:
    assert i18n.negotiate(header, chosen) == language


def test_moments_are_shown_in_the_user_s_zone_and_language() -> None:
    moment = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)
    assert "2026" in i18n.when(moment, "en", None)
    shanghai = i18n.when(moment, "zh-Hans", "Asia/Shanghai")
    assert "2026年12月3日" in shanghai
    assert "07:30" in shanghai
    assert i18n.when(moment, "en", "Not/AZone") == i18n.when(moment, "en", "UTC")


def test_a_text_in_two_catalogs_is_translated_the_same_in_both() -> None:
    """Catalogs are merged, so a text two areas share must mean one thing in Chinese."""
    from babel.messages.pofile import read_po

    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for po in sorted((i18n.LOCALES_DIR / "zh_Hans" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as source:
            for message in read_po(source):
                if not message.id:
                    continue
                text, chinese = str(message.id), str(message.string)
                earlier = seen.setdefault(text, (po.name, chinese))
                if earlier[1] != chinese:
                    clashes.append((text, earlier, (po.name, chinese)))
    assert clashes == []

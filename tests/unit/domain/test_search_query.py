"""The search box's language: words, phrases, exclusions, field terms and case numbers, in
English and Chinese; a query that cannot be read says where."""

from __future__ import annotations

import random
from datetime import date

import pytest

from casedesk.domain.cases.priority import Priority
from casedesk.domain.search.query import (
    MAX_LENGTH,
    MAX_TERMS,
    FieldTerm,
    QueryError,
    Text,
    parse,
)


def test_words_phrases_and_exclusions() -> None:
    query = parse('printer "on  fire" -paper -"out of toner"')
    assert query.texts == (
        Text("printer"),
        Text("on fire", phrase=True),
        Text("paper", negated=True),
        Text("out of toner", phrase=True, negated=True),
    )
    assert query.words == (Text("printer"),)
    assert query.fields == ()


def test_chinese_text_and_typographic_quotes() -> None:
    query = parse("打印机 “着火了” 「卡纸」 -墨盒")
    assert query.texts == (
        Text("打印机"),
        Text("着火了", phrase=True),
        Text("卡纸", phrase=True),
        Text("墨盒", negated=True),
    )


def test_field_terms_in_english_and_with_a_full_width_colon() -> None:
    query = parse(
        'state:open queue:"second line" tag\uff1avip assignee:ME customer:ann@example.com'
    )
    assert query.fields == (
        FieldTerm("state", "open"),
        FieldTerm("queue", "second line"),
        FieldTerm("tag", "vip"),
        FieldTerm("assignee", "me"),
        FieldTerm("customer", "ann@example.com"),
    )
    assert query.texts == ()
    assert query.of("tag") == (FieldTerm("tag", "vip"),)


def test_field_names_are_not_case_sensitive_and_terms_can_be_excluded() -> None:
    assert parse("State:open -tag:spam").fields == (
        FieldTerm("state", "open"),
        FieldTerm("tag", "spam", negated=True),
    )


def test_priorities_and_their_comparisons() -> None:
    assert parse("priority:high priority:>=Normal priority:<urgent").fields == (
        FieldTerm("priority", Priority.HIGH),
        FieldTerm("priority", Priority.NORMAL, ">="),
        FieldTerm("priority", Priority.URGENT, "<"),
    )


def test_dates_comparisons_and_ranges() -> None:
    query = parse("created:>2026-01-01 updated:<=2026-02-01 created:2026-03-01..2026-03-31")
    assert query.fields == (
        FieldTerm("created", date(2026, 1, 1), ">"),
        FieldTerm("updated", date(2026, 2, 1), "<="),
        FieldTerm("created", date(2026, 3, 1), ">="),
        FieldTerm("created", date(2026, 3, 31), "<="),
    )
    assert parse("created:2026-05-04").fields == (FieldTerm("created", date(2026, 5, 4)),)


def test_case_numbers_and_excluded_ones() -> None:
    query = parse("#1042 #7 -#9 refund")
    assert (query.numbers, query.excluded_numbers) == ((1042, 7), (9,))
    assert query.texts == (Text("refund"),)
    assert parse('"#1042"').texts == (Text("#1042", phrase=True),)  # quoted: text
    assert parse("#12a").texts == (Text("#12a"),)


def test_a_colon_in_text_that_is_no_field_is_text() -> None:
    query = parse("at 10:30 see https://example.com/a:b note:")
    assert [t.value for t in query.texts] == [
        "at",
        "10:30",
        "see",
        "https://example.com/a:b",
        "note:",
    ]


def test_a_blank_query_is_empty() -> None:
    assert parse(None).empty
    assert parse("   ").empty
    assert not parse("x").empty


def _refused(query: str) -> tuple[str, int]:
    with pytest.raises(QueryError) as refused:
        parse(query)
    return refused.value.detail, refused.value.extra["position"]


@pytest.mark.parametrize(
    ("query", "position", "says"),
    [
        ('printer "on fire', 9, "this quote is not closed"),
        ("「卡纸", 1, "add 」"),
        ("stat:open", 1, "no field 'stat'; the fields are state:, priority:"),
        ("a -stat:open", 4, "no field 'stat'"),
        ("state:", 7, "state: needs a value"),
        ("priority:hihg", 10, "no priority 'hihg'; the priorities are low, normal, high, urgent"),
        ("priority:>=hihg", 10, "no priority"),
        ("created:2026-13-01", 9, "'2026-13-01' is no date; write it as 2026-01-31"),
        ("created:>yesterday", 10, "'yesterday' is no date"),
        ("created:2026-01-01..soon", 21, "'soon' is no date"),
        ("created:2026-02-01..2026-01-01", 9, "the range ends before it starts"),
        ("-created:2026-01-01..2026-01-31", 1, "a range of created cannot be excluded"),
        ('"a"b', 4, "a space is needed after the closing quote"),
        ('pri"nter', 4, "a quote may only start a term"),
        ('""', 1, "the quotes hold nothing"),
        ("a - b", 3, "a lone '-' excludes nothing"),
    ],
)
def test_a_query_that_cannot_be_read_says_where_and_why(
    query: str, position: int, says: str
) -> None:
    detail, at = _refused(query)
    assert at == position, detail
    assert f"q, at character {position}: " in detail
    assert says in detail


def test_overlong_queries_and_too_many_terms_are_refused() -> None:
    detail, at = _refused("x" * (MAX_LENGTH + 1))
    assert (at, f"at most {MAX_LENGTH} characters" in detail) == (MAX_LENGTH + 1, True)
    detail, _ = _refused(" ".join(["w"] * (MAX_TERMS + 1)))
    assert f"at most {MAX_TERMS} terms" in detail
    assert len(parse(" ".join(["w"] * MAX_TERMS)).texts) == MAX_TERMS


def test_the_refusal_is_a_422_naming_the_q_parameter() -> None:
    with pytest.raises(QueryError) as refused:
        parse("stat:open")
    assert refused.value.status == 422
    assert refused.value.extra["field"] == "q"


def test_any_text_is_a_query_or_a_query_error_never_another_failure() -> None:
    """Seeded, bounded: 3,000 strings of the characters the language gives meaning to."""
    pieces = ['"', "“", "”", "「", "」", "-", "#", ":", "\uff1a", " ", "..", ">", "<=", "=",
              "state", "priority", "created", "tag", "stat", "high", "2026-01-01", "9", "打印机",
              "a", "\t", "\n", "//"]  # fmt: skip
    chance = random.Random(20261204)
    for _ in range(3000):
        text = "".join(chance.choice(pieces) for _ in range(chance.randint(0, 14)))
        refusals = []
        try:
            parse(text)
        except QueryError as refused:
            refusals.append(refused.detail)
        assert all(detail.startswith("q, at character ") for detail in refusals), text

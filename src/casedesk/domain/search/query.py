"""The search box's language: what an agent types into ``q``, read into terms.

    printer "on fire" -paper state:open priority:>=high tag:vip assignee:me
    created:>2026-01-01 created:2026-01-01..2026-01-31 #1042 我的打印机

- a **word** is matched anywhere in what is searched (a Chinese run of characters is one word,
  found as a substring of the text, as the engines do with trigrams);
- a **phrase** is text in double quotes, straight or typographic (``"…"``, ``“…”``, ``「…」``);
- ``-`` before a word, a phrase, a field term or a number **excludes** what it matches;
- a **field term** is a known field's name, a colon (``:``, or the full-width one a Chinese
  keyboard types) and a value, quoted when it has spaces: ``state:``, ``priority:`` (a
  priority name, or a comparison ``>high``, ``<=normal``), ``queue:``, ``assignee:`` (``me``,
  ``none`` or an address), ``tag:``, ``customer:`` (a name or an address), ``channel:``,
  ``created:`` and ``updated:`` (a date, ``>``/``>=``/``<``/``<=`` a date, or ``a..b``, both
  days included);
- ``#N`` is the case with number N.

Terms are ANDed; several values of one field (``tag:a tag:b``) must all hold, except numbers
and states, queues, channels and assignees, of which a case has one: those are any of.
A query that cannot be read raises ``QueryError``, an ``InvalidInput`` (a 422) that says at
which character and what was expected, never a query that silently means something else: an
unknown field name (``stat:open``) is refused with the known ones, while a colon in text that
is no field (``10:30``, ``http://…``) is text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from casedesk.domain.cases.priority import Priority
from casedesk.kit.errors import InvalidInput

MAX_LENGTH = 500
MAX_TERMS = 32
FIELDS = (
    "state",
    "priority",
    "queue",
    "assignee",
    "tag",
    "customer",
    "channel",
    "created",
    "updated",
)
DATE_FIELDS = frozenset({"created", "updated"})
ONE_PER_CASE = frozenset({"state", "queue", "channel", "assignee"})
"""Fields a case has one value of: several terms of one of them are any of."""
Comparison = Literal["=", ">", ">=", "<", "<="]

_QUOTES = {'"': '"', "“": "”", "「": "」", "„": "“"}
_COLONS = ":\uff1a"  # and the full-width colon
_NAME = re.compile(r"[A-Za-z_]+")
_NUMBER = re.compile(r"#(\d{1,18})")
_COMPARED = re.compile(r"(>=|<=|>|<)?(.*)", re.S)


class QueryError(InvalidInput):
    """A query that cannot be read: where (the 1-based character) and why."""

    def __init__(self, query: str, at: int, problem: str) -> None:
        shown = query if len(query) <= 80 else query[:77] + "…"
        super().__init__(
            f"q, at character {at + 1}: {problem} (in {shown!r})",
            field="q",
            position=at + 1,
        )


@dataclass(frozen=True, slots=True)
class Text:
    value: str
    phrase: bool = False
    negated: bool = False


@dataclass(frozen=True, slots=True)
class FieldTerm:
    name: str
    value: str | date | Priority
    comparison: Comparison = "="
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    texts: tuple[Text, ...] = ()
    fields: tuple[FieldTerm, ...] = ()
    numbers: tuple[int, ...] = ()
    """Case numbers, any of."""
    excluded_numbers: tuple[int, ...] = ()
    source: str = field(default="", compare=False)

    @property
    def empty(self) -> bool:
        return not (self.texts or self.fields or self.numbers or self.excluded_numbers)

    @property
    def words(self) -> tuple[Text, ...]:
        """The text that must be found (neither excluded nor a phrase)."""
        return tuple(t for t in self.texts if not t.negated and not t.phrase)

    def of(self, name: str) -> tuple[FieldTerm, ...]:
        return tuple(term for term in self.fields if term.name == name)


@dataclass(frozen=True, slots=True)
class _Token:
    start: int
    raw: str
    """The token as typed (quotes removed from a quoted value)."""
    quoted: bool
    negated: bool
    name: str | None = None
    """A field's name when the token is ``name:value``."""
    name_at: int = 0


def parse(query: str | None) -> Query:
    """``query`` as terms; an empty or blank one is the empty query (no condition)."""
    text = (query or "").strip()
    if len(text) > MAX_LENGTH:
        raise QueryError(text, MAX_LENGTH, f"a query may have at most {MAX_LENGTH} characters")
    texts: list[Text] = []
    fields: list[FieldTerm] = []
    numbers: list[int] = []
    excluded: list[int] = []
    for count, token in enumerate(_tokens(text), start=1):
        if count > MAX_TERMS:
            raise QueryError(text, token.start, f"a query may have at most {MAX_TERMS} terms")
        if token.name is not None:
            fields.extend(_field(text, token))
        elif not token.quoted and (number := _NUMBER.fullmatch(token.raw)):
            (excluded if token.negated else numbers).append(int(number.group(1)))
        else:
            texts.append(Text(token.raw, phrase=token.quoted, negated=token.negated))
    return Query(tuple(texts), tuple(fields), tuple(numbers), tuple(excluded), text)


def _tokens(text: str) -> Iterator[_Token]:
    at, end = 0, len(text)
    while at < end:
        if text[at].isspace():
            at += 1
            continue
        start = at
        negated = text[at] == "-"
        if negated:
            at += 1
            if at == end or text[at].isspace():
                raise QueryError(text, start, "a lone '-' excludes nothing")
        name, name_at = None, at
        found = _NAME.match(text, at)
        if found and found.end() < end and text[found.end()] in _COLONS:
            candidate = found.group().lower()
            after = found.end() + 1
            if candidate in FIELDS:
                name, at = candidate, after
            elif after < end and not text[after].isspace() and not text.startswith("//", after):
                known = ", ".join(f"{f}:" for f in FIELDS)
                raise QueryError(
                    text, found.start(), f"no field {found.group()!r}; the fields are {known}"
                )
        if at < end and text[at] in _QUOTES:
            closing = _QUOTES[text[at]]
            close = text.find(closing, at + 1)
            if close < 0:
                raise QueryError(text, at, f"this quote is not closed: add {closing}")
            value = " ".join(text[at + 1 : close].split())
            if not value:
                raise QueryError(text, at, "the quotes hold nothing")
            yield _Token(start, value, True, negated, name, name_at)
            at = close + 1
            if at < end and not text[at].isspace():
                raise QueryError(text, at, "a space is needed after the closing quote")
            continue
        stop = at
        while stop < end and not text[stop].isspace():
            if text[stop] in _QUOTES:
                raise QueryError(text, stop, "a quote may only start a term or a field's value")
            stop += 1
        value = text[at:stop]
        if name is not None and not value:
            raise QueryError(text, at, f"{name}: needs a value")
        yield _Token(start, value, False, negated, name, name_at)
        at = stop


def _field(text: str, token: _Token) -> tuple[FieldTerm, ...]:
    name = token.name
    assert name is not None
    value_at = token.name_at + len(name) + 1 + (1 if token.quoted else 0)
    if name in DATE_FIELDS:
        return _date_terms(text, token, value_at)
    if name == "priority":
        comparison, rest = _compared(token.raw)
        try:
            priority = Priority(rest.lower())
        except ValueError:
            known = ", ".join(p.value for p in Priority)
            raise QueryError(
                text, value_at, f"no priority {rest!r}; the priorities are {known}"
            ) from None
        return (FieldTerm(name, priority, comparison, token.negated),)
    value = token.raw
    if name == "assignee" and value.lower() in ("me", "none"):
        value = value.lower()
    return (FieldTerm(name, value, "=", token.negated),)


def _compared(value: str) -> tuple[Comparison, str]:
    found = _COMPARED.fullmatch(value)
    assert found is not None
    comparison: Comparison = found.group(1) or "="  # type: ignore[assignment]
    return comparison, found.group(2)


def _date_terms(text: str, token: _Token, value_at: int) -> tuple[FieldTerm, ...]:
    """``created:2026-01-01`` (that day), ``>``/``>=``/``<``/``<=`` a day, or ``a..b``
    (from a to b, both days included: two terms, ``>=`` a and ``<=`` b)."""
    name = token.name
    assert name is not None
    if ".." in token.raw:
        if token.negated:
            raise QueryError(text, token.start, f"a range of {name} cannot be excluded")
        first, _, last = token.raw.partition("..")
        low = _day(text, first, value_at)
        high = _day(text, last, value_at + len(first) + 2)
        if high < low:
            raise QueryError(text, value_at, f"the range ends before it starts ({first}..{last})")
        return (FieldTerm(name, low, ">="), FieldTerm(name, high, "<="))
    comparison, rest = _compared(token.raw)
    offset = len(token.raw) - len(rest)
    day = _day(text, rest, value_at + offset)
    return (FieldTerm(name, day, comparison, token.negated),)


FIRST_DAY, LAST_DAY = date(1000, 1, 1), date(9999, 12, 30)
"""The days a date term may name: every database can compare moments in them (MariaDB's
DATETIME starts at the year 1000), and the day after the last is still a date."""


def _day(text: str, value: str, at: int) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise QueryError(text, at, f"{value!r} is no date; write it as 2026-01-31") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise QueryError(text, at, f"{value} is not between {FIRST_DAY} and {LAST_DAY}")
    return day

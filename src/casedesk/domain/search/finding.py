"""A parsed query (``query.Query``) as what the store looks for: the text as phrases of tokens
for the index, the field terms as conditions on the cases themselves, with the names in them
(queues, people) resolved in the tenant.

A field term names what the tenant has: an unknown queue or person is a 422 naming it, as the
list's own filters do. Who searches decides what counts: someone who may not read internal
notes never matches them (``Searcher.internal``), and a customer only finds their own cases.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from casedesk.domain.cases.priority import Priority
from casedesk.domain.search.query import FieldTerm, Query
from casedesk.domain.search.tokens import tokens
from casedesk.kit.errors import InvalidInput
from casedesk.store.search import CaseTerms, Compared, Narrowing, Phrase, TextMatch
from casedesk.store.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Searcher:
    """Who searches: ``assignee:me`` is ``user_id``; ``internal``: internal notes count."""

    user_id: uuid.UUID | None
    internal: bool


def _day(value: date) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _dated(term: FieldTerm) -> list[Compared]:
    """A day of ``created:``/``updated:`` as a comparison of the moment, days in UTC."""
    assert isinstance(term.value, date)
    column = f"{term.name}_at"
    start = _day(term.value)
    end = _day(term.value + timedelta(days=1))  # a day before date.max: the query says so
    if term.comparison == "=":
        return [Compared(column, "within", (start, end), term.negated)]
    moment = {">": end, ">=": start, "<": start, "<=": end}[term.comparison]
    comparison = {">": ">=", ">=": ">=", "<": "<", "<=": "<"}[term.comparison]
    return [Compared(column, comparison, moment, term.negated)]


async def _user(uow: UnitOfWork, value: str, searcher: Searcher) -> uuid.UUID | None:
    if value == "none":
        return None
    if value == "me":
        if searcher.user_id is None:
            raise InvalidInput("assignee:me names no one here: sign in as a user", field="q")
        return searcher.user_id
    user = await uow.users.by_email(value.strip().lower())
    if user is None:
        raise InvalidInput(f"q: no user {value!r} (assignee: is me, none or an address)", field="q")
    return user.id


async def compile_search(uow: UnitOfWork, query: Query, searcher: Searcher) -> Narrowing:
    """``query`` as the case list applies it, the names in it found in the tenant."""
    phrases: list[Phrase] = []
    for item in query.texts:
        found = tuple(tokens(item.value))
        if not found:
            continue  # punctuation alone: nothing the index holds
        phrases.append(Phrase(found, item.negated))
    values: dict[str, list[Any]] = {}
    compared: list[Compared] = []
    for term in query.fields:
        key = ("-" if term.negated else "") + term.name
        if term.name in ("created", "updated"):
            compared += _dated(term)
        elif term.name == "priority":
            assert isinstance(term.value, Priority)
            compared.append(Compared("priority", term.comparison, term.value.rank, term.negated))
        elif term.name == "queue":
            queue = await uow.queues.by_code(str(term.value))
            if queue is None:
                raise InvalidInput(f"q: no queue {term.value!r}", field="q")
            values.setdefault(key, []).append(queue.id)
        elif term.name == "assignee":
            values.setdefault(key, []).append(await _user(uow, str(term.value), searcher))
        elif term.name == "customer":
            values.setdefault(key, []).append(str(term.value).strip().lower())
        else:
            values.setdefault(key, []).append(str(term.value))

    def of(key: str) -> tuple[Any, ...]:
        return tuple(values.get(key, ()))

    terms = CaseTerms(
        numbers_any=query.numbers,
        numbers_none=query.excluded_numbers,
        states_any=of("state"),
        states_none=of("-state"),
        queues_any=of("queue"),
        queues_none=of("-queue"),
        channels_any=of("channel"),
        channels_none=of("-channel"),
        assignees_any=of("assignee"),
        assignees_none=of("-assignee"),
        tags=of("tag"),
        untagged=of("-tag"),
        customers=of("customer"),
        not_customers=of("-customer"),
        compared=tuple(compared),
    )
    text = TextMatch(tuple(phrases), searcher.internal) if phrases else None
    return Narrowing(text, terms)

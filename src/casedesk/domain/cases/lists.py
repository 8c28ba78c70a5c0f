"""Finding cases by what a person or a program names: queue and template codes, a customer's
address. The API's case list and the workbench's lists and views both read through here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from casedesk.domain.cases.priority import Priority
from casedesk.domain.search.finding import Searcher, compile_search
from casedesk.domain.search.query import MAX_LENGTH, QueryError, parse
from casedesk.domain.statemachine.definition import StateType
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import InvalidInput
from casedesk.store.cases import CaseFilter
from casedesk.store.models import Case
from casedesk.store.repository import Page
from casedesk.store.search import RELEVANCE, Narrowing
from casedesk.store.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class CaseQuery:
    state: str | None = None
    closed: bool | None = None
    queue: str | None = None
    assignee_id: uuid.UUID | None = None
    unassigned: bool | None = None
    template: str | None = None
    priority: int | None = None
    customer: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    state_type: StateType | None = None
    """start, normal, pending or end: the cases in a state of this type in their machine"""
    sla_due_before: datetime | None = None
    in_queues_of: uuid.UUID | None = None
    """in the queues this user works: theirs, and those without members"""
    q: str | None = None
    """the search box's query (``domain.search.query``)"""
    searcher: Searcher | None = None
    """who searches (``assignee:me``, internal notes); None: no one in particular, notes count"""


async def case_filter(uow: UnitOfWork, query: CaseQuery) -> CaseFilter | None:
    """The store's filter for ``query``; None when it can match nothing (an unknown customer).
    An unknown queue or template is a 422 naming it."""
    queue_id = template_id = customer_id = None
    if query.queue is not None:
        found_queue = await uow.queues.by_code(query.queue)
        if found_queue is None:
            raise InvalidInput(f"no queue {query.queue!r}", field="queue")
        queue_id = found_queue.id
    if query.template is not None:
        found_template = await uow.templates.by_code(query.template)
        if found_template is None:
            raise InvalidInput(f"no template {query.template!r}", field="template")
        template_id = found_template.id
    if query.customer is not None:
        found_customer = await uow.customers.by_email(query.customer.strip().lower())
        if found_customer is None:
            return None
        customer_id = found_customer.id
    states = None
    if query.state_type is not None:
        states = frozenset(await uow.machines.published_states_of_type(query.state_type))
        if not states:
            return None
    queue_ids = None
    if query.in_queues_of is not None:
        queue_ids = await uow.queues.worked_by(query.in_queues_of)
    return CaseFilter(
        queue_ids=queue_ids,
        states=states,
        sla_due_before=query.sla_due_before,
        state=query.state,
        closed=query.closed,
        queue_id=queue_id,
        assignee_id=query.assignee_id,
        template_id=template_id,
        priority=query.priority,
        customer_id=customer_id,
        created_after=query.created_after,
        created_before=query.created_before,
        unassigned=query.unassigned,
    )


async def narrowing_of(uow: UnitOfWork, query: CaseQuery) -> Narrowing | None:
    """The search of ``query.q`` as the store applies it; None without one. A query that
    cannot be read, or names what the tenant does not have, is a 422 on ``q``."""
    parsed = parse(query.q)
    if parsed.empty:
        return None
    searcher = query.searcher or Searcher(user_id=None, internal=True)
    return await compile_search(uow, parsed, searcher)


def sort_for(query: CaseQuery, narrowing: Narrowing | None, sort: str | None, default: str) -> str:
    """The sort asked for, or by relevance when words are searched and none was asked."""
    if sort is None:
        return RELEVANCE if narrowing is not None and narrowing.ranked else default
    if sort == RELEVANCE and (narrowing is None or not narrowing.ranked):
        raise InvalidInput("sort=relevance needs words to rank by in q", field="sort")
    return sort


async def find_cases(
    uow: UnitOfWork,
    query: CaseQuery,
    *,
    sort: str | None,
    limit: int,
    cursor: str | None,
    default: str = "-created",
) -> Page[Case]:
    """A page of the cases ``query`` finds, sorted by ``sort`` (None: by relevance when
    words are searched, else by ``default``)."""
    narrowing = await narrowing_of(uow, query)
    chosen = sort_for(query, narrowing, sort, default)
    where = await case_filter(uow, query)
    if where is None:
        return Page(items=[], next_cursor=None)
    return await uow.cases.list_page(
        where, sort=chosen, limit=limit, cursor=cursor, narrowing=narrowing
    )


async def count_cases(uow: UnitOfWork, query: CaseQuery, *, cap: int = 1000) -> int:
    narrowing = await narrowing_of(uow, query)
    where = await case_filter(uow, query)
    return 0 if where is None else await uow.cases.count(where, cap=cap, narrowing=narrowing)


# --- views: the workbench's built-in lists, and the lists people save -----------------------

SLA_DUE_SOON = timedelta(hours=4)
"""How near an SLA target is "due soon": the view lists running clocks due within it."""
Base = Literal["mine", "unassigned", "waiting", "sla_due", "open", "recent", "closed"]
Sort = Literal[
    "-created",
    "created",
    "-updated",
    "updated",
    "-priority",
    "priority",
    "-number",
    "number",
    "relevance",
]
ViewCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]


def base_query(base: str, user_id: uuid.UUID) -> CaseQuery:
    """What a built-in view lists, for the user looking at it."""
    return {
        "mine": CaseQuery(closed=False, assignee_id=user_id),
        "unassigned": CaseQuery(closed=False, unassigned=True, in_queues_of=user_id),
        "waiting": CaseQuery(closed=False, state_type=StateType.PENDING),
        "sla_due": CaseQuery(closed=False, sla_due_before=utcnow() + SLA_DUE_SOON),
        "open": CaseQuery(closed=False),
        "recent": CaseQuery(),
        "closed": CaseQuery(closed=True),
    }[base]


class ViewFilters(BaseModel):
    """A saved view's filters: a built-in view it narrows, and the list's filters."""

    model_config = ConfigDict(extra="forbid")

    base: Base = Field(default="open", description="the built-in view it narrows")
    state: ViewCode | None = None
    queue: ViewCode | None = None
    priority: Priority | None = None
    template: ViewCode | None = None
    q: str | None = Field(
        default=None, max_length=MAX_LENGTH, description="a search (the search box's language)"
    )

    @field_validator("q")
    @classmethod
    def _readable(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            parse(value)
        except QueryError as refused:
            raise ValueError(refused.detail) from None
        return value.strip()

    def query(self, user_id: uuid.UUID) -> CaseQuery:
        return replace(
            base_query(self.base, user_id),
            state=self.state,
            queue=self.queue,
            priority=self.priority.rank if self.priority is not None else None,
            template=self.template,
            q=self.q,
            searcher=Searcher(user_id, internal=True),
        )


class SavedViewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    filters: ViewFilters = Field(default_factory=ViewFilters)
    sort: Sort = "-updated"
    shared: bool = Field(default=False, description="everyone's view (admins only); else yours")
    position: int = Field(default=0, ge=0, le=999, description="order in the sidebar")

    @model_validator(mode="after")
    def _rankable(self) -> SavedViewIn:
        wanted = [t for t in parse(self.filters.q).texts if not t.negated]
        if self.sort == RELEVANCE and not wanted:
            raise ValueError("sort relevance needs words to rank by in filters.q")
        return self

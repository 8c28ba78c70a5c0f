"""Finding cases by what a person or a program names: queue and template codes, a customer's
address. The API's case list and the workbench's lists and views both read through here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from casedesk.domain.statemachine.definition import StateType
from casedesk.kit.errors import InvalidInput
from casedesk.store.cases import CaseFilter
from casedesk.store.models import Case
from casedesk.store.repository import Page
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
    return CaseFilter(
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


async def find_cases(
    uow: UnitOfWork, query: CaseQuery, *, sort: str, limit: int, cursor: str | None
) -> Page[Case]:
    where = await case_filter(uow, query)
    if where is None:
        return Page(items=[], next_cursor=None)
    return await uow.cases.list_page(where, sort=sort, limit=limit, cursor=cursor)


async def count_cases(uow: UnitOfWork, query: CaseQuery, *, cap: int = 1000) -> int:
    where = await case_filter(uow, query)
    return 0 if where is None else await uow.cases.count(where, cap=cap)

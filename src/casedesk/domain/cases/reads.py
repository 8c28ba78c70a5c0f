"""The case detail and the case list as the API answers them, read without ORM objects.

The rows of ``store.case_reads`` are shaped straight into the JSON of ``CaseDetail`` and
``CasePage`` (same fields, same order, same formats), ready for one ``orjson.dumps``. What
depends only on a published machine version and a state (the current state, the allowed
actions) is built once per process: versions never change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Row

from casedesk.domain.cases.lists import CaseQuery, case_filter, narrowing_of, sort_for
from casedesk.domain.cases.machines import PublishedMachine, published
from casedesk.domain.cases.priority import Priority
from casedesk.domain.cases.views import DETAIL_COMMENTS, attachment_ref_json
from casedesk.domain.extensions.registry import DEFAULT_EDITION, ExtensionRegistry
from casedesk.domain.extensions.scenes import CASE_DETAIL_EXTRA
from casedesk.domain.search.highlight import best_fragment
from casedesk.domain.search.indexing import Lag, lag_of
from casedesk.domain.search.query import parse
from casedesk.kit.errors import NotFound
from casedesk.store.case_reads import DETAIL_COLUMNS, CaseReads
from casedesk.store.models import Case
from casedesk.store.search import texts_of
from casedesk.store.unit_of_work import UnitOfWork

_PRIORITIES = {rank: Priority.from_rank(rank).value for rank in range(4)}
_STATES: dict[tuple[uuid.UUID, str], tuple[dict[str, Any], list[dict[str, str]]]] = {}


def _state_of(
    version_id: uuid.UUID, machine: PublishedMachine, state: str
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The current state and the allowed actions of a case in ``state`` (shared: never
    change what this returns)."""
    found = _STATES.get((version_id, state))
    if found is None:
        definition = machine.machine.state(state)
        found = _STATES[(version_id, state)] = (
            {"code": definition.code, "name": definition.name, "type": definition.type.value},
            [
                {"action": t.action, "name": t.name, "to": t.to}
                for t in machine.machine.allowed(state)
            ],
        )
    return found


def summary_json(row: Row[Any]) -> dict[str, Any]:
    """A ``CaseSummary`` of a row that starts with ``store.case_reads.SUMMARY_COLUMNS``."""
    return {
        "id": row.id,
        "number": row.number,
        "title": row.title,
        "state": row.state,
        "closed": row.closed,
        "priority": _PRIORITIES[row.priority],
        "queue_id": row.queue_id,
        "assignee_id": row.assignee_id,
        "customer_id": row.customer_id,
        "template_id": row.template_id,
        "channel": row.channel,
        "external_ref": row.external_ref,
        "parent_id": row.parent_id,
        "tags": row.tags,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "state_entered_at": row.state_entered_at or row.created_at,
        "closed_at": row.closed_at,
    }


def _comment_json(row: Row[Any]) -> dict[str, Any]:
    delivery = (
        None
        if row.delivery_status is None
        else {
            "status": row.delivery_status,
            "provider_id": row.delivered_id,
            "error": row.delivery_error,
            "attempts": row.delivery_attempts,
        }
    )
    return {
        "id": row.id,
        "body": row.body,
        "public": row.public,
        "author_type": row.author_type,
        "author_id": row.author_id,
        "author_name": row.author_name,
        "channel": row.channel,
        "external_id": row.external_id,
        "thread_id": row.thread_id,
        "delivery": delivery,
        "edited_at": row.edited_at,
        "deleted_at": row.deleted_at,
        "created_at": row.created_at,
    }


def _task_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.task_id,
        "queue_id": row.task_queue_id,
        "assignee_id": row.task_assignee_id,
        "status": row.task_status,
        "created_at": row.task_created_at,
        "accepted_at": row.task_accepted_at,
        "done_at": row.task_done_at,
    }


async def _extra(row: Row[Any], extensions: ExtensionRegistry, edition: str) -> dict[str, Any]:
    if edition == DEFAULT_EDITION:
        return {}
    # An edition's scene takes the case as the ORM knows it: a transient copy of the row.
    case = Case(**{column.key: getattr(row, column.key) for column in DETAIL_COLUMNS})
    extra: dict[str, Any] = await extensions.call(CASE_DETAIL_EXTRA, edition, case)
    return extra


async def case_detail_json(
    uow: UnitOfWork, case_id: uuid.UUID, extensions: ExtensionRegistry, edition: str
) -> dict[str, Any]:
    """The JSON of ``CaseDetail`` for the case (404 when the tenant has none such)."""
    rows = await CaseReads(uow.session).detail(case_id, comments=DETAIL_COMMENTS)
    if rows is None:
        raise NotFound(f"case {case_id} not found")
    case = rows.case
    machine = await published(uow, case.machine_version_id)
    attached = await uow.attachments.of_comments(
        comment.id for comment in rows.comments if comment.attachment_count
    )
    files = {
        comment_id: [attachment_ref_json(row) for row in found]
        for comment_id, found in attached.items()
    }
    current_state, allowed_actions = _state_of(case.machine_version_id, machine, case.state)
    rating = (
        {"score": case.rating_score, "comment": case.rating_comment, "rated_at": case.rated_at}
        if case.rating_score is not None and case.rated_at is not None
        else None
    )
    customer = (
        None
        if case.customer_id is None
        else {"id": case.customer_id, "email": case.customer_email, "name": case.customer_name}
    )
    return {
        **summary_json(case),
        "description": case.description,
        "template": case.template_code,
        "state_machine": {"code": machine.code, "version": machine.version},
        "current_state": current_state,
        "allowed_actions": allowed_actions,
        "queue": case.queue_code,
        "customer": customer,
        "form": case.form,
        "tasks": [_task_json(task) for task in rows.tasks],
        "comments": [
            _comment_json(comment) | {"attachments": files.get(comment.id, [])}
            for comment in rows.comments
        ],
        "comments_more": rows.comments_next_cursor is not None,
        "comments_next_cursor": rows.comments_next_cursor,
        "rating": rating,
        "sla": [clock._asdict() for clock in rows.clocks],
        "extra": await _extra(case, extensions, edition),
    }


async def case_page_json(
    uow: UnitOfWork, query: CaseQuery, *, sort: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """The JSON of ``CasePage``: the queue and template codes are resolved in the page's
    own statement; the other filters as ``lists.case_filter`` resolves them. With a search
    (``query.q``), each case has the fragment it matched in (``highlight``), and ``meta``
    says how far the index is behind."""
    reads = CaseReads(uow.session)
    narrowing = await narrowing_of(uow, query)
    chosen = sort_for(query, narrowing, sort, "-created")
    where = await case_filter(uow, replace(query, queue=None, template=None))
    meta = await _search_meta(uow) if narrowing is not None else None
    if where is None:
        await reads.check_codes(query.queue, query.template)
        return {"items": [], "next_cursor": None, **meta_of(meta)}
    page = await reads.page(
        where,
        queue=query.queue,
        template=query.template,
        sort=chosen,
        limit=limit,
        cursor=cursor,
        narrowing=narrowing,
    )
    items = [summary_json(row) for row in page.rows]
    if narrowing is not None:
        found = await highlights(uow, [(row.id, row.title) for row in page.rows], query)
        for item, row in zip(items, page.rows, strict=True):
            item["highlight"] = found.get(row.id)
    shown = meta_of(meta)
    if page.ordered_by is not None:
        shown["meta"]["search_order"] = page.ordered_by
    return {"items": items, "next_cursor": page.next_cursor, **shown}


def meta_of(lag: Lag | None) -> dict[str, Any]:
    if lag is None:
        return {}
    return {"meta": {"search_lag_seconds": lag.seconds, "search_lag_events": lag.events}}


async def _search_meta(uow: UnitOfWork) -> Lag:
    tenant_id = uow.tenant_id
    assert tenant_id is not None
    return await lag_of(uow, tenant_id)


async def highlights(
    uow: UnitOfWork, cases: Sequence[tuple[uuid.UUID, str]], query: CaseQuery
) -> dict[uuid.UUID, dict[str, str] | None]:
    """For each of ``cases`` (id, title) that ``query.q`` found, the fragment of its title,
    description or comments with the most matches (None when the match is in what is not
    shown, such as the customer's address, or the query has no words)."""
    marked = [t.value for t in parse(query.q).texts if not t.negated]
    if not marked or not cases:
        return {}
    internal = query.searcher.internal if query.searcher is not None else True
    texts = await texts_of(uow.session, [case_id for case_id, _ in cases], internal=internal)
    return {
        case_id: best_fragment([("title", title), *texts.get(case_id, [])], marked)
        for case_id, title in cases
    }

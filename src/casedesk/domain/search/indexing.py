"""Keeping the search documents: the ``search`` consumer group of the case events, and the
rebuild beside it (``casedesk search reindex``).

For an event of a case whose text may have changed, the indexer makes the case's document
again from its rows as they are now and keeps it with the event's position: a document made
from the current rows is right whatever order events come in and however often they come,
and a position older than the one kept writes nothing. A case write never waits for this:
the group reads the events after they were committed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from casedesk.domain.search.documents import CaseText, Document, document_of
from casedesk.kit.clock import utcnow
from casedesk.store.search import SourceRows, lag, source_rows
from casedesk.store.unit_of_work import UnitOfWork

GROUP = "search"
TYPES = ("case.created", "case.updated", "comment.added", "comment.changed")
"""The events after which a case's searched text may differ."""
LAG_CACHE_SECONDS = 1.0
BEHIND_SECONDS = 5.0
"""From this lag on, the workbench says results may be a few seconds behind."""


def _text(rows: SourceRows) -> CaseText:
    case = rows.case
    return CaseText(
        number=case.number,
        title=case.title,
        description=case.description,
        tags=tuple(case.tags or ()),
        form=case.form or {},
        customer_name=case.customer_name,
        customer_email=case.customer_email,
        comments=tuple(rows.comments),
    )


async def documents_of(uow: UnitOfWork, case_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Document]:
    """The documents of the tenant's cases among ``case_ids``, made from their rows."""
    found = await source_rows(uow.session, case_ids)
    return {case_id: document_of(_text(rows)) for case_id, rows in found.items()}


async def index_case(uow: UnitOfWork, case_id: uuid.UUID, position: int) -> bool:
    """Make and keep the case's document for the event at ``position``; False when the case
    is gone or a later event's document is kept."""
    document = (await documents_of(uow, [case_id])).get(case_id)
    if document is None:
        return False
    return await uow.search.write(
        case_id, document.public_tokens, document.internal_tokens, position=position
    )


async def rebuild(uow: UnitOfWork, case_ids: Sequence[uuid.UUID]) -> int:
    """Make the documents of ``case_ids`` again beside the indexer; how many were written."""
    read = await uow.search.positions(case_ids)
    written = 0
    for case_id, document in (await documents_of(uow, case_ids)).items():
        written += await uow.search.rebuild(
            case_id, document.public_tokens, document.internal_tokens, read=read.get(case_id)
        )
    return written


@dataclass(frozen=True, slots=True)
class Lag:
    events: int
    """Events of the tenant not yet indexed (counted among its newest 1,000)."""
    seconds: float
    """Age of the oldest of them."""

    @property
    def behind(self) -> bool:
        return self.seconds >= BEHIND_SECONDS


_lags: dict[uuid.UUID, tuple[float, Lag]] = {}


async def deployment_lag(uow: UnitOfWork) -> Lag:
    """How far the index is behind every tenant's events (a unit of work of no tenant)."""
    events, seconds = await lag(uow.session, GROUP, TYPES, now=utcnow())
    return Lag(events, round(seconds, 3))


async def lag_of(
    uow: UnitOfWork, tenant_id: uuid.UUID, *, clock: Callable[[], float] = time.monotonic
) -> Lag:
    """How far the index is behind the tenant's events, measured at most once a second per
    process (a list asked for many times a second reads it once)."""
    now = clock()
    kept = _lags.get(tenant_id)
    if kept is not None and now - kept[0] < LAG_CACHE_SECONDS:
        return kept[1]
    events, seconds = await lag(uow.session, GROUP, TYPES, now=utcnow())
    found = Lag(events, round(seconds, 3))
    if len(_lags) > 10_000:
        _lags.clear()
    _lags[tenant_id] = (now, found)
    return found

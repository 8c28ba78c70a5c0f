from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Response, status
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from casedesk.activities.accept_task import AcceptTaskActivity
from casedesk.activities.add_comment import AddCommentActivity, CommentParams
from casedesk.activities.apply_action import ActionParams, ApplyActionActivity
from casedesk.activities.base import ActivityContext
from casedesk.activities.channels import RedeliverActivity, RedeliverParams
from casedesk.activities.create_case import Idempotency, create_case, fingerprint
from casedesk.activities.rate_case import RateCaseActivity, RatingParams
from casedesk.activities.transfer_case import TransferCaseActivity, TransferParams
from casedesk.activities.update_case import UpdateCaseActivity, UpdateParams
from casedesk.api import API_V1
from casedesk.api.deps import ActivityContextDep, CursorParam, PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.domain.cases.inputs import (
    ActionInput,
    CaseChanges,
    CaseDraft,
    CommentInput,
    RatingInput,
    TransferInput,
)
from casedesk.domain.cases.lists import CaseQuery
from casedesk.domain.cases.priority import Priority
from casedesk.domain.cases.reads import case_detail_json, case_page_json
from casedesk.domain.cases.views import (
    CaseDetail,
    CaseSummary,
    CommentView,
    HistoryEntry,
    comment_view,
    detail,
    history_entry,
)
from casedesk.domain.search.finding import Searcher
from casedesk.domain.statemachine.definition import StateType
from casedesk.kit.errors import NotFound
from casedesk.kit.values import Instant
from casedesk.store.case_reads import CaseReads
from casedesk.store.cases import SORTS
from casedesk.store.models import Case
from casedesk.store.unit_of_work import UnitOfWork

router = APIRouter(prefix=f"{API_V1}/cases", tags=["cases"], route_class=ApiRoute)

Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
IdempotencyKey = Annotated[
    str | None,
    Header(max_length=255, description="same key and body → same response, once"),
]


class Highlight(BaseModel):
    field: Literal["title", "description", "comment", "internal_note"]
    html: str = Field(description="the matched fragment, escaped, each match in <mark>")


class FoundCase(CaseSummary):
    highlight: Highlight | None = Field(
        default=None, description="with q: where the words matched (none: in other fields)"
    )


class SearchMeta(BaseModel):
    search_lag_seconds: float = Field(
        description="age of the oldest case change not yet indexed (0: up to date)"
    )
    search_lag_events: int = Field(
        description="case changes not yet indexed, counted among the newest 1,000"
    )
    search_order: Literal["relevance", "newest"] | None = Field(
        default=None,
        description="sorted by relevance: by score, or the newest first when the words are "
        "in more than 1,000 cases",
    )


class CasePage(BaseModel):
    items: list[FoundCase]
    next_cursor: str | None
    meta: SearchMeta | None = Field(default=None, description="with q: how far search is behind")


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
    next_cursor: str | None


class CommentPage(BaseModel):
    items: list[CommentView]
    next_cursor: str | None


def _uuid_text(value: object) -> str:
    # orjson writes uuid.UUID itself; asyncpg returns a UUID type of its own
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """A response of ``body`` serialised once, as pydantic would (instants in UTC end in Z)."""
    return Response(
        orjson.dumps(body, default=_uuid_text, option=orjson.OPT_UTC_Z),
        headers=headers,
        media_type="application/json",
    )


def _with_etag(view: CaseDetail, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        view.model_dump(mode="json"),
        status_code=status_code,
        headers={"ETag": f'"{view.version}"'},
    )


async def _detail(context: ActivityContext, case: Case) -> JSONResponse:
    return _with_etag(await detail(context.uow, case, context.extensions, context.edition))


@router.post(
    "",
    response_model=CaseDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Create a case (200 with the existing case for a known external_ref)",
)
async def create(
    body: CaseDraft, context: ActivityContextDep, idempotency_key: IdempotencyKey = None
) -> Response:
    ticket = Idempotency(idempotency_key, fingerprint(body)) if idempotency_key else None
    outcome = await create_case(context, body, ticket)
    headers = {"ETag": f'"{outcome.version}"'}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        outcome.json(),
        status_code=outcome.status_code,
        headers=headers,
        media_type="application/json",
    )


@router.get("", response_model=CasePage, summary="List cases with filters, sort and a cursor")
async def list_cases(
    uow: UnitOfWorkDep,
    principal: PrincipalDep,
    state: str | None = None,
    closed: bool | None = None,
    queue: str | None = Query(default=None, description="queue code"),
    assignee_id: uuid.UUID | None = None,
    unassigned: bool | None = Query(default=None, description="true: no assignee; false: one"),
    template: str | None = Query(default=None, description="template code"),
    priority: Priority | None = None,
    customer: str | None = Query(default=None, description="customer e-mail"),
    created_after: Instant | None = None,
    created_before: Instant | None = None,
    state_type: StateType | None = Query(
        default=None, description="cases in a state of this type (pending: waiting on the customer)"
    ),
    sla_due_before: Instant | None = Query(
        default=None, description="cases with a running SLA clock due before this moment"
    ),
    q: str | None = Query(
        default=None,
        description=(
            'search: words, "phrases", -excluded, state: priority: queue: assignee:me tag: '
            "customer: channel: created: updated: and #number"
        ),
    ),
    sort: str | None = Query(
        default=None,
        description=f"one of {', '.join(SORTS)}, or relevance (the default with words in q; "
        "else -created)",
    ),
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> Response:
    query = CaseQuery(
        q=q,
        searcher=Searcher(principal.user_id, internal=True),
        state=state,
        closed=closed,
        queue=queue,
        assignee_id=assignee_id,
        unassigned=unassigned,
        template=template,
        priority=priority.rank if priority is not None else None,
        customer=customer,
        created_after=created_after,
        created_before=created_before,
        state_type=state_type,
        sla_due_before=sla_due_before,
    )
    return _json(await case_page_json(uow, query, sort=sort, limit=limit, cursor=cursor))


@router.get("/{case_id}", response_model=CaseDetail)
async def read(case_id: uuid.UUID, context: ActivityContextDep) -> Response:
    view = await case_detail_json(context.uow, case_id, context.extensions, context.edition)
    return _json(view, headers={"ETag": f'"{view["version"]}"'})


async def _ensure_case(uow: UnitOfWork, case_id: uuid.UUID) -> None:
    if not await CaseReads(uow.session).exists(case_id):
        raise NotFound(f"case {case_id} not found")


@router.get(
    "/{case_id}/history", response_model=HistoryPage, summary="Action records, oldest first"
)
async def history(
    case_id: uuid.UUID, uow: UnitOfWorkDep, limit: Limit = 100, cursor: CursorParam = None
) -> HistoryPage:
    await _ensure_case(uow, case_id)
    page = await uow.actions.history(case_id, limit=limit, cursor=cursor)
    return HistoryPage(items=[history_entry(r) for r in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{case_id}/comments",
    response_model=CommentPage,
    summary="Comments, oldest first (or newest first), cursor pages",
)
async def comments(
    case_id: uuid.UUID,
    uow: UnitOfWorkDep,
    order: Literal["oldest", "newest"] = "oldest",
    limit: Limit = 50,
    cursor: str | None = None,
) -> CommentPage:
    await _ensure_case(uow, case_id)
    pages = {"oldest": uow.comments.oldest_first, "newest": uow.comments.newest_first}
    page = await pages[order](case_id, limit=limit, cursor=cursor)
    files = await uow.attachments.of_comments(c.id for c in page.items if c.attachment_count)
    items = [comment_view(c, files.get(c.id, ())) for c in page.items]
    return CommentPage(items=items, next_cursor=page.next_cursor)


@router.patch("/{case_id}", response_model=CaseDetail, summary="Change title, priority, form, tags")
async def update(case_id: uuid.UUID, body: CaseChanges, context: ActivityContextDep) -> Response:
    case = await UpdateCaseActivity(context).run(UpdateParams(case_id, body))
    return await _detail(context, case)


@router.post(
    "/{case_id}/actions/{action}",
    response_model=CaseDetail,
    summary="Apply a state-machine action (409 lists the allowed ones)",
)
async def apply_action(
    case_id: uuid.UUID,
    action: str,
    context: ActivityContextDep,
    body: ActionInput | None = None,
) -> Response:
    params = ActionParams(case_id, action, body or ActionInput())
    case = await ApplyActionActivity(context).run(params)
    return await _detail(context, case)


@router.post("/{case_id}/transfer", response_model=CaseDetail, summary="Move to a queue/assignee")
async def transfer(
    case_id: uuid.UUID, body: TransferInput, context: ActivityContextDep
) -> Response:
    case = await TransferCaseActivity(context).run(TransferParams(case_id, body))
    return await _detail(context, case)


@router.post("/{case_id}/accept", response_model=CaseDetail, summary="Take the open task")
async def accept(case_id: uuid.UUID, context: ActivityContextDep) -> Response:
    case = await AcceptTaskActivity(context).run(case_id)
    return await _detail(context, case)


@router.post(
    "/{case_id}/comments",
    response_model=CaseDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Add a public or internal comment",
)
async def comment(case_id: uuid.UUID, body: CommentInput, context: ActivityContextDep) -> Response:
    activity = AddCommentActivity(context)
    await activity.run(CommentParams(case_id, body))
    # The case the activity locked and left as it is: no need to read it again.
    view = await detail(context.uow, activity.case, context.extensions, context.edition)
    return _with_etag(view, 201)


@router.post(
    "/{case_id}/comments/{comment_id}/redeliver",
    response_model=CommentView,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a comment whose delivery to the case's channel failed again",
)
async def redeliver(
    case_id: uuid.UUID, comment_id: uuid.UUID, context: ActivityContextDep
) -> CommentView:
    comment = await RedeliverActivity(context).run(RedeliverParams(case_id, comment_id))
    return comment_view(comment)


@router.post("/{case_id}/rating", response_model=CaseDetail, summary="Rate a closed case, once")
async def rate(case_id: uuid.UUID, body: RatingInput, context: ActivityContextDep) -> Response:
    case = await RateCaseActivity(context).run(RatingParams(case_id, body))
    return await _detail(context, case)

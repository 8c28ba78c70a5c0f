"""What a reader sees of a case: the detail (one case) and the summary (lists)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from casedesk.domain.cases.machines import published
from casedesk.domain.cases.priority import Priority
from casedesk.domain.extensions.registry import ExtensionRegistry
from casedesk.domain.extensions.scenes import CASE_DETAIL_EXTRA
from casedesk.store.models import ActionRecord, Attachment, Case, Comment, Customer, Task
from casedesk.store.unit_of_work import UnitOfWork

DETAIL_COMMENTS = 50
"""The detail shows this many of the newest comments; ``GET …/comments`` pages the rest."""


class StateView(BaseModel):
    code: str
    name: str
    type: str


class ActionView(BaseModel):
    action: str
    name: str
    to: str


class TaskView(BaseModel):
    id: uuid.UUID
    queue_id: uuid.UUID
    assignee_id: uuid.UUID | None
    status: str
    created_at: datetime
    accepted_at: datetime | None
    done_at: datetime | None


class DeliveryView(BaseModel):
    """How a public comment on a case from a channel went back into its thread."""

    status: Literal["pending", "sent", "failed"]
    provider_id: str | None = Field(description="the message's id at the channel, once sent")
    error: str | None = Field(description="why the last attempt failed")
    attempts: int


class AttachmentRef(BaseModel):
    """An attachment as a comment lists it; ``content_url`` downloads it."""

    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    inline: bool
    content_id: str | None
    content_url: str


def attachment_ref_json(row: Attachment) -> dict[str, Any]:
    return {
        "id": row.id,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "inline": row.inline,
        "content_id": row.content_id,
        "content_url": f"/api/v1/attachments/{row.id}/content",
    }


class CommentView(BaseModel):
    id: uuid.UUID
    body: str
    public: bool
    author_type: str
    author_id: uuid.UUID | None
    author_name: str | None
    channel: str | None
    external_id: str | None
    thread_id: str | None = None
    delivery: DeliveryView | None = None
    edited_at: datetime | None = None
    deleted_at: datetime | None = Field(
        default=None, description="when its author deleted it at the channel (it is kept)"
    )
    created_at: datetime
    attachments: list[AttachmentRef] = []


class RatingView(BaseModel):
    score: int
    comment: str | None
    rated_at: datetime


class SlaView(BaseModel):
    metric: str
    status: str
    target_at: datetime | None
    warned: bool
    met_at: datetime | None
    breached_at: datetime | None
    remaining_seconds: int | None = None


class CustomerView(BaseModel):
    id: uuid.UUID
    email: str
    name: str | None


class CaseSummary(BaseModel):
    id: uuid.UUID
    number: int
    title: str
    state: str
    closed: bool
    priority: Priority
    queue_id: uuid.UUID
    assignee_id: uuid.UUID | None
    customer_id: uuid.UUID | None
    template_id: uuid.UUID
    channel: str
    external_ref: str | None
    parent_id: uuid.UUID | None
    tags: list[str]
    version: int
    created_at: datetime
    updated_at: datetime
    state_entered_at: datetime = Field(description="when the case entered its current state")
    closed_at: datetime | None


class CaseDetail(CaseSummary):
    description: str | None
    template: str
    state_machine: dict[str, Any]
    current_state: StateView
    allowed_actions: list[ActionView]
    queue: str
    customer: CustomerView | None
    form: dict[str, Any]
    tasks: list[TaskView]
    comments: list[CommentView] = Field(
        description=f"the newest {DETAIL_COMMENTS} comments, oldest of them first"
    )
    comments_more: bool = Field(
        default=False, description="whether the case has older comments than those shown"
    )
    comments_next_cursor: str | None = Field(
        default=None,
        description="when there are more: the cursor of GET /cases/{id}/comments?order=newest"
        " that continues with the older ones",
    )
    rating: RatingView | None
    sla: list[SlaView] = []
    extra: dict[str, Any]


class HistoryEntry(BaseModel):
    id: uuid.UUID
    code: str
    memo: dict[str, Any]
    operator: dict[str, Any]
    task_id: uuid.UUID | None
    trace_id: str
    created_at: datetime


def summary(case: Case) -> CaseSummary:
    return CaseSummary(
        id=case.id,
        number=case.number,
        title=case.title,
        state=case.state,
        closed=case.closed,
        priority=Priority.from_rank(case.priority),
        queue_id=case.queue_id,
        assignee_id=case.assignee_id,
        customer_id=case.customer_id,
        template_id=case.template_id,
        channel=case.channel,
        external_ref=case.external_ref,
        parent_id=case.parent_id,
        tags=list(case.tags),
        version=case.version,
        created_at=case.created_at,
        updated_at=case.updated_at,
        state_entered_at=case.state_entered_at or case.created_at,
        closed_at=case.closed_at,
    )


def comment_view(comment: Comment, attachments: Sequence[Attachment] = ()) -> CommentView:
    view = CommentView.model_validate(comment, from_attributes=True)
    if attachments:
        refs = [AttachmentRef.model_validate(attachment_ref_json(row)) for row in attachments]
        view = view.model_copy(update={"attachments": refs})
    if comment.delivery_status is None:
        return view
    delivery = DeliveryView(
        status=comment.delivery_status,
        provider_id=comment.delivered_id,
        error=comment.delivery_error,
        attempts=comment.delivery_attempts,
    )
    return view.model_copy(update={"delivery": delivery})


def history_entry(record: ActionRecord) -> HistoryEntry:
    return HistoryEntry(
        id=record.id,
        code=record.code,
        memo=record.memo,
        operator={
            "type": record.operator_type,
            "id": record.operator_id,
            "name": record.operator_name,
        },
        task_id=record.task_id,
        trace_id=record.trace_id,
        created_at=record.created_at,
    )


@dataclass(frozen=True, slots=True)
class Known:
    """Parts of a case its caller already holds, so that ``detail`` need not read them."""

    template_code: str
    queue_code: str
    customer: Customer | None
    tasks: list[Task]
    comments: list[Comment]
    """The newest comments, oldest of them first."""
    fresh: bool = False
    """A case being created: nothing else refers to it yet (no SLA clocks)."""
    comments_next_cursor: str | None = None
    """Where the comments older than ``comments`` continue; None: there are none."""


async def detail(
    uow: UnitOfWork,
    case: Case,
    extensions: ExtensionRegistry,
    edition: str,
    known: Known | None = None,
) -> CaseDetail:
    machine = await published(uow, case.machine_version_id)
    if known is None:
        template_code, queue_code, customer = await uow.cases.labels(case)
        newest = await uow.comments.newest_first(case.id, limit=DETAIL_COMMENTS, cursor=None)
        known = Known(
            template_code,
            queue_code,
            customer,
            await uow.tasks.of_case(case.id),
            list(reversed(newest.items)),
            comments_next_cursor=newest.next_cursor,
        )
    state = machine.machine.state(case.state)
    rating = (
        RatingView(score=case.rating_score, comment=case.rating_comment, rated_at=case.rated_at)
        if case.rating_score is not None and case.rated_at is not None
        else None
    )
    customer = known.customer
    clocks = [] if known.fresh else await uow.sla.clocks(case.id)
    files = await uow.attachments.of_comments(c.id for c in known.comments if c.attachment_count)
    return CaseDetail(
        **summary(case).model_dump(),
        description=case.description,
        template=known.template_code,
        state_machine={"code": machine.code, "version": machine.version},
        current_state=StateView(code=state.code, name=state.name, type=state.type.value),
        allowed_actions=[
            ActionView(action=t.action, name=t.name, to=t.to)
            for t in machine.machine.allowed(case.state)
        ],
        queue=known.queue_code,
        customer=CustomerView(id=customer.id, email=customer.email, name=customer.name)
        if customer
        else None,
        form=case.form,
        tasks=[TaskView.model_validate(task, from_attributes=True) for task in known.tasks],
        comments=[comment_view(comment, files.get(comment.id, ())) for comment in known.comments],
        comments_more=known.comments_next_cursor is not None,
        comments_next_cursor=known.comments_next_cursor,
        rating=rating,
        sla=[SlaView.model_validate(clock, from_attributes=True) for clock in clocks],
        extra=await extensions.call(CASE_DETAIL_EXTRA, edition, case),
    )

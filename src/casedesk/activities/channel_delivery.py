"""Queueing an agent's public comment for the channel its case came from.

``AddCommentActivity`` calls ``schedule_delivery`` in the comment's own transaction, so a
committed comment always has its ``channel.deliver`` job, and a rolled-back one never sends.
"""

from __future__ import annotations

import uuid

from casedesk.kit.clock import utcnow
from casedesk.kit.tracing import TraceContext
from casedesk.store.models import Case, Comment
from casedesk.store.unit_of_work import UnitOfWork

DELIVER = "channel.deliver"
"""The job that sends an agent's public comment back into its case's thread."""


def deliver_key(comment_id: uuid.UUID) -> str:
    return f"{DELIVER}:{comment_id}"


async def queue_delivery(uow: UnitOfWork, comment: Comment, trace: TraceContext) -> None:
    comment.delivery_status = "pending"
    await uow.jobs.schedule(
        kind=DELIVER,
        key=deliver_key(comment.id),
        due_at=utcnow(),
        payload={"comment_id": str(comment.id)},
        traceparent=trace.child().traceparent,
        case_id=comment.case_id,
    )


async def schedule_delivery(
    uow: UnitOfWork, case: Case, comment: Comment, trace: TraceContext
) -> bool:
    """Queue a public comment written in casedesk when its case came from a channel."""
    if not comment.public or comment.channel is not None or comment.author_type == "customer":
        return False
    if await uow.channel_messages.latest_inbound(case.id) is None:
        return False
    await queue_delivery(uow, comment, trace)
    return True

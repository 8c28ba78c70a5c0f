"""Deliveries of webhook messages and the jobs that make their attempts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from casedesk.kit.clock import utcnow
from casedesk.store.models import ScheduledJob, WebhookDelivery, WebhookSubscription
from casedesk.store.unit_of_work import UnitOfWork

DELIVER = "webhook.deliver"


def deliver_key(delivery_id: uuid.UUID, label: str) -> str:
    return f"{DELIVER}:{delivery_id}:{label}"


async def queue_delivery(
    uow: UnitOfWork,
    subscription: WebhookSubscription,
    *,
    message_id: str,
    event_type: str,
    case_id: uuid.UUID | None,
    payload: dict[str, Any],
    traceparent: str,
) -> WebhookDelivery:
    """A new delivery of ``payload`` to the subscription, its first attempt due now."""
    now = utcnow()
    delivery = WebhookDelivery(
        subscription_id=subscription.id,
        message_id=message_id,
        event_type=event_type,
        case_id=case_id,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
    )
    uow.deliveries.add(delivery)
    await uow.flush()
    await schedule_attempt(uow, delivery, now, traceparent)
    return delivery


async def schedule_attempt(
    uow: UnitOfWork,
    delivery: WebhookDelivery,
    due: datetime,
    traceparent: str,
    *,
    manual: bool = False,
) -> None:
    """The job that makes the delivery's next attempt, numbered ``attempts + 1``."""
    number = delivery.attempts + 1
    label = f"manual-{number}" if manual else str(number)
    delivery.next_attempt_at = due
    await uow.jobs.schedule(
        kind=DELIVER,
        key=deliver_key(delivery.id, label),
        due_at=due,
        payload={"delivery_id": str(delivery.id), "manual": manual, "attempt": number},
        traceparent=traceparent,
        case_id=delivery.case_id,
    )


def attempt_number(job: ScheduledJob) -> int:
    """Which attempt of its delivery a ``webhook.deliver`` job makes. Jobs scheduled before
    the number was kept in the payload carry it as the last part of their key."""
    number = job.payload.get("attempt")
    if isinstance(number, int):
        return number
    return int(job.key.rsplit(":", 1)[-1].removeprefix("manual-"))

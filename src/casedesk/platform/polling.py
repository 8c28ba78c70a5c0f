"""Polling triggers: a ``trigger.poll`` job per subscription, due every interval.

Starting a subscription schedules its first run now; that run records the baseline and fires
nothing. Stopping it calls off the pending run.
"""

from __future__ import annotations

import uuid

from casedesk.integrations.manifests import TriggerDef
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox
from casedesk.kit.tracing import trace_or_new
from casedesk.store.models import Subscription
from casedesk.store.unit_of_work import UnitOfWork

POLL = "trigger.poll"


def poll_key(subscription_id: uuid.UUID) -> str:
    return f"{POLL}:{subscription_id}"


async def start(
    uow: UnitOfWork, subscription: Subscription, trigger: TriggerDef, box: SecretBox
) -> None:
    await uow.jobs.schedule(
        kind=POLL,
        key=poll_key(subscription.id),
        due_at=utcnow(),
        payload={"subscription_id": str(subscription.id)},
        traceparent=trace_or_new().traceparent,
    )


async def stop(uow: UnitOfWork, subscription: Subscription) -> None:
    await uow.jobs.cancel(poll_key(subscription.id))

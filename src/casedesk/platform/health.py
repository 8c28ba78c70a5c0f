"""A subscription's health: its run of failures, and the events when it fails and recovers.

Each failed run counts; after ``failing_after`` in a row the subscription is ``failing``, its
last error shown, with one ``subscription.failing`` event. It keeps trying on its own, and the
first run that succeeds after that makes it ``active`` again with one
``subscription.recovered`` event. Both happen in the transaction that records the run.
"""

from __future__ import annotations

from casedesk.domain.events import EVENTS, Subject, new_event
from casedesk.kit.clock import utcnow
from casedesk.kit.tracing import TraceContext
from casedesk.store.models import Subscription
from casedesk.store.unit_of_work import UnitOfWork

SUBSCRIPTION = "subscription"
FAILING = "subscription.failing"
RECOVERED = "subscription.recovered"
EVENTS.declare(
    FAILING,
    SUBSCRIPTION,
    "a trigger's subscription failed several times in a row; it keeps trying",
    ("error", "consecutive_failures"),
)
EVENTS.declare(
    RECOVERED,
    SUBSCRIPTION,
    "a failing subscription succeeded again",
    ("failures",),
)
MAX_ERROR = 4_000
"""Characters of an error kept on the subscription."""


def about(subscription: Subscription) -> Subject:
    return Subject(
        SUBSCRIPTION,
        subscription.id,
        {
            "id": str(subscription.id),
            "workflow_id": str(subscription.workflow_id),
            "connection_id": str(subscription.connection_id)
            if subscription.connection_id
            else None,
            "trigger": subscription.trigger,
            "status": subscription.status,
        },
    )


def record_failure(
    uow: UnitOfWork,
    subscription: Subscription,
    error: str,
    *,
    failing_after: int,
    trace: TraceContext,
) -> None:
    """Count a failed run; the one that reaches ``failing_after`` makes it ``failing``."""
    subscription.consecutive_failures += 1
    subscription.last_error = error[:MAX_ERROR]
    subscription.last_run_at = utcnow()
    if subscription.status != "active" or subscription.consecutive_failures < failing_after:
        return
    subscription.status = "failing"
    data = {"error": subscription.last_error, "consecutive_failures": failing_after}
    uow.add_events([new_event(subscription.tenant_id, FAILING, about(subscription), data, trace)])


def record_success(uow: UnitOfWork, subscription: Subscription, *, trace: TraceContext) -> None:
    """A run that worked: the failures are over, and a failing subscription has recovered."""
    failures = subscription.consecutive_failures
    subscription.consecutive_failures = 0
    subscription.last_error = None
    subscription.last_run_at = utcnow()
    if subscription.status != "failing":
        return
    subscription.status = "active"
    uow.add_events(
        [
            new_event(
                subscription.tenant_id,
                RECOVERED,
                about(subscription),
                {"failures": failures},
                trace,
            )
        ]
    )

"""Starting and stopping a workflow's subscription, routed by the kind of its trigger."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from casedesk.integrations.manifests import TriggerDef
from casedesk.kit.crypto import SecretBox
from casedesk.platform import instant, polling
from casedesk.store.models import Subscription
from casedesk.store.unit_of_work import UnitOfWork

Start = Callable[[UnitOfWork, Subscription, TriggerDef, SecretBox], Awaitable[None]]
Stop = Callable[[UnitOfWork, Subscription], Awaitable[None]]
LIFECYCLE: dict[str, tuple[Start, Stop]] = {
    "polling": (polling.start, polling.stop),
    "instant": (instant.start, instant.stop),
}


async def start(
    uow: UnitOfWork, subscription: Subscription, trigger: TriggerDef, box: SecretBox
) -> None:
    """Set the subscription going: its first poll, or its hook token and source subscription."""
    begin, _ = LIFECYCLE[trigger.kind]
    await begin(uow, subscription, trigger, box)


async def stop(uow: UnitOfWork, subscription: Subscription, trigger: TriggerDef) -> None:
    _, end = LIFECYCLE[trigger.kind]
    await end(uow, subscription)

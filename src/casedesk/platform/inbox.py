"""The inbox of instant triggers: deliveries stored before they are acknowledged, and the
worker that hands their events to the workflow.

``Inbox.receive`` is ``POST /hooks/{token}``: the token finds the subscription in one
indexed lookup, then everything happens bound to its tenant. Handshakes are answered
without storing anything; a delivery that fails its authenticity check is refused (401)
and nothing is stored; one that is malformed is refused (400) saying why. Otherwise the
delivery is stored once per (subscription, event id) — a unique constraint, so a provider's
retry is a no-op whatever the timing — with an ``inbox.process`` job, both committed before
the answer, which is the trigger's ``ack_status`` at once.

A delivery costs one query to find its subscription (with its tenant and the versions of
what its trigger is made of) and one transaction to store it. The trigger the subscription
resolves to, with its secrets opened, is kept in this process for a few seconds, and only
while those versions are the same: a changed subscription, workflow or connection is
resolved again at its next delivery, and disabling one refuses the next delivery.

``Inbox.run_job`` is the ``inbox.process`` job: it splits the delivery into its events, acts
on lifecycle notifications (scheduling a renewal, a recreation or a resync), and hands every
other event to ``intake.fire`` in the transaction that marks the delivery processed. Run
twice, it does nothing the second time.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from casedesk.integrations import hooks
from casedesk.integrations.hooks import Answer, Delivery, DeliveryTooLarge, MalformedDelivery
from casedesk.integrations.hub import Hub
from casedesk.integrations.manifests.instant import InstantSpec
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox
from casedesk.kit.errors import CasedeskError, InvalidInput, NotFound
from casedesk.kit.ids import uuid7
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import parse_traceparent, trace_or_new
from casedesk.platform import instant
from casedesk.platform.instant import PROCESS, is_active, resolve, token_hash
from casedesk.platform.intake import TriggerItem, fire
from casedesk.store.database import Database
from casedesk.store.models import InboxDelivery, ScheduledJob, Subscription
from casedesk.store.platform import HookTarget
from casedesk.store.unit_of_work import UnitOfWork

log = get_logger(__name__)


class HookDisabled(CasedeskError):
    """410: the hook exists but its workflow is disabled; enabling it again reopens it."""

    status = 410
    title = "Hook disabled"
    slug = "hook-disabled"


class HookMethodNotAllowed(CasedeskError):
    status = 405
    title = "Method not allowed"
    slug = "method-not-allowed"


def process_key(delivery_id: uuid.UUID) -> str:
    return f"{PROCESS}:{delivery_id}"


@dataclass(frozen=True, slots=True)
class _Kept:
    stamp: tuple[int, int, int | None]
    until: float
    spec: InstantSpec
    keys: dict[str, str]


class HookResolutions:
    """The triggers hooks resolved to lately, by token hash: at most ``size``, each for at
    most ``seconds`` and only while the versions it was resolved at hold."""

    def __init__(self, *, size: int = 10_000, seconds: float = 10.0) -> None:
        self.size = size
        self.seconds = seconds
        self._kept: OrderedDict[str, _Kept] = OrderedDict()

    def get(self, token_hash: str, stamp: tuple[int, int, int | None]) -> _Kept | None:
        kept = self._kept.get(token_hash)
        if kept is None or kept.stamp != stamp or kept.until < time.monotonic():
            return None
        self._kept.move_to_end(token_hash)
        return kept

    def keep(
        self,
        token_hash: str,
        stamp: tuple[int, int, int | None],
        spec: InstantSpec,
        keys: dict[str, str],
    ) -> None:
        self._kept[token_hash] = _Kept(stamp, time.monotonic() + self.seconds, spec, keys)
        self._kept.move_to_end(token_hash)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)


class Inbox:
    def __init__(
        self,
        database: Database,
        hub: Hub,
        box: SecretBox,
        resolutions: HookResolutions | None = None,
    ) -> None:
        self.database = database
        self.hub = hub
        self.box = box
        self.resolutions = HookResolutions(size=0) if resolutions is None else resolutions

    async def _target(self, token: str) -> HookTarget:
        async with UnitOfWork(self.database) as uow:
            target = await uow.subscriptions.hook_target_any_tenant(token_hash(token))
        if target is None or not target.tenant_enabled:
            raise NotFound("there is no hook at this address")
        if not is_active(target.subscription):
            raise HookDisabled(
                "this hook's workflow is disabled; deliveries are refused until it is enabled"
            )
        return target

    async def _resolved(self, token: str, target: HookTarget) -> tuple[InstantSpec, dict[str, str]]:
        hashed = token_hash(token)
        kept = self.resolutions.get(hashed, target.stamp)
        if kept is not None:
            return kept.spec, kept.keys
        subscription = target.subscription
        async with UnitOfWork(self.database, subscription.tenant_id) as uow:
            resolved = await resolve(uow, self.hub, self.box, subscription)
        self.resolutions.keep(hashed, target.stamp, resolved.spec, resolved.keys)
        return resolved.spec, resolved.keys

    async def receive(self, token: str, delivery: Delivery) -> Answer:
        target = await self._target(token)
        subscription = target.subscription
        spec, keys = await self._resolved(token, target)
        reading = hooks.read(spec, delivery)
        answer = hooks.handshake(spec, reading)
        if answer is not None:
            return answer
        if delivery.method != "POST":
            raise HookMethodNotAllowed("deliveries are POSTed; GET answers handshakes only")
        now = utcnow()
        hooks.verify_request(spec.verify, delivery, reading, keys, now.timestamp())
        events = hooks.events_of(spec, reading)
        hooks.verify_events(spec.verify, events, keys)
        ids = hooks.event_ids(spec, events, reading.text)
        stored = InboxDelivery(
            id=uuid7(),
            tenant_id=subscription.tenant_id,
            subscription_id=subscription.id,
            event_id=hooks.delivery_id(ids, reading.text),
            headers=hooks.kept_headers(spec.verify, delivery.headers),
            query=dict(delivery.query),
            body=reading.text,
            status="pending",
            received_at=now,
        )
        async with UnitOfWork(self.database, subscription.tenant_id) as uow:
            await uow.begin_write()
            try:
                if await uow.inbox.store(stored):
                    uow.jobs.add(
                        kind=PROCESS,
                        key=process_key(stored.id),
                        due_at=now,
                        payload={"delivery_id": str(stored.id)},
                        traceparent=trace_or_new().traceparent,
                    )
                await uow.commit()
            except IntegrityError:
                # The subscription was deleted (with its workflow) since it was looked up.
                raise NotFound("there is no hook at this address") from None
        return Answer(spec.ack_status)

    async def run_job(self, job: ScheduledJob) -> None:
        """``inbox.process``: the delivery's events to the workflow, once."""
        delivery_id = uuid.UUID(str(job.payload["delivery_id"]))
        trace = parse_traceparent(job.traceparent) or trace_or_new()
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            delivery = await uow.inbox.locked(delivery_id)
            if delivery is None or delivery.status != "pending":
                return  # handled already (a second runner), or gone with its subscription
            subscription = await uow.subscriptions.get(delivery.subscription_id)
            resolved = await resolve(uow, self.hub, self.box, subscription)  # unavailable: retried
            try:
                items, actions = _split(resolved.spec, delivery, subscription.external_id)
            except (MalformedDelivery, DeliveryTooLarge, InvalidInput) as exc:
                # It was read when it arrived; the trigger has changed since. Kept, not retried.
                log.warning("inbox delivery dropped", delivery_id=str(delivery.id), why=exc.detail)
                delivery.status, delivery.error = "dropped", exc.detail
                delivery.processed_at = utcnow()
                await uow.commit()
                return
            await fire(uow, subscription, items, trace)
            for action in dict.fromkeys(actions):
                await _NOTIFIED[action](uow, subscription, delivery)
            delivery.status = "processed" if items else "dropped"
            delivery.processed_at = utcnow()
            await uow.commit()


def _split(
    spec: InstantSpec, delivery: InboxDelivery, external_id: str | None
) -> tuple[list[TriggerItem], list[str]]:
    """The items of a stored delivery, and what its lifecycle notifications ask for (those
    about an earlier source subscription than ``external_id`` ask for nothing)."""
    received = Delivery("POST", delivery.body.encode("utf-8"), delivery.headers, delivery.query)
    reading = hooks.read(spec, received)
    events = hooks.events_of(spec, reading)
    ids = hooks.event_ids(spec, events, reading.text)
    items: list[TriggerItem] = []
    actions: list[str] = []
    for source_id, event in zip(ids, events, strict=True):
        notification = hooks.notification_of(spec, event)
        if notification is None:
            items.append(
                TriggerItem(source_id, event if isinstance(event, dict) else {"value": event})
            )
            continue
        if _about_current(spec, event, external_id):
            actions.append(notification.action)
    return items, actions


def _about_current(spec: InstantSpec, event: Any, external_id: str | None) -> bool:
    named = spec.lifecycle.notified_id if spec.lifecycle is not None else None
    if named is None:
        return True
    about = hooks.select_in(named, event)
    return about is None or str(about) == external_id


async def _reauthorize(uow: UnitOfWork, subscription: Subscription, _: InboxDelivery) -> None:
    await instant.plan_renewal(uow, subscription, due=utcnow())


async def _recreate(uow: UnitOfWork, subscription: Subscription, _: InboxDelivery) -> None:
    external_id = subscription.external_id
    if external_id is None:
        return
    await instant.plan(
        uow,
        instant.CREATE,
        subscription,
        utcnow(),
        tag=f"recreate-{external_id}",
        recreate=True,
        external_id=external_id,
    )


async def _resync(uow: UnitOfWork, subscription: Subscription, delivery: InboxDelivery) -> None:
    await instant.plan(uow, instant.RESYNC, subscription, utcnow(), tag=str(delivery.id))


async def _ignore(uow: UnitOfWork, subscription: Subscription, delivery: InboxDelivery) -> None:
    return None


_NOTIFIED: dict[str, Callable[[UnitOfWork, Subscription, InboxDelivery], Awaitable[Any]]] = {
    "reauthorize": _reauthorize,
    "recreate": _recreate,
    "resync": _resync,
    "ignore": _ignore,
}

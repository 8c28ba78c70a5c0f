"""The life of a source's own subscription (Microsoft Graph's), as scheduled jobs.

- ``instant.create``: make it (the source checks the hook with a handshake meanwhile), keep
  its id and expiry, record what exists already as seen (the resync's baseline: nothing
  fires), and plan the renewal at about half its life.
- ``instant.renew``: extend it; a renewal answered "gone" (404, 410) makes it again and
  resyncs, so that nothing sent in the gap is missed: the resync's items go through
  ``intake.fire``, whose seen ids keep what the hook delivered already from firing twice.
- ``instant.resync``: catch up (a ``missed`` notification), as a polling run.
- ``instant.delete``: delete it when the subscription stops.

Each job reads what it needs, makes its calls outside any writing transaction, and then
writes the outcome with the subscription's row locked, after checking its premise again. A
job that fails plans its own retry with backoff; after ``FAILING_AFTER`` failures in a row
the subscription is ``failing``, with its last error and a ``subscription.failing`` event,
and it keeps trying; the first success makes it ``active`` again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from casedesk.integrations.errors import HubError
from casedesk.integrations.expressions import ExpressionError, select
from casedesk.integrations.hooks import source_id_text
from casedesk.integrations.hub import Hub
from casedesk.integrations.manifests.common import RequestTemplate
from casedesk.integrations.manifests.instant import Lifecycle, Resync
from casedesk.integrations.manifests.polling import FullSync
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox, SecretUnreadable
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import TraceContext, parse_traceparent, trace_or_new
from casedesk.platform import instant
from casedesk.platform.health import record_failure, record_success
from casedesk.platform.instant import (
    CREATE,
    DELETE,
    RENEW,
    RESYNC,
    HookUnavailable,
    Resolved,
    expiry_mark,
    is_active,
    plan,
    plan_renewal,
    resolve,
)
from casedesk.platform.intake import TriggerItem, fire, remember
from casedesk.store.database import Database
from casedesk.store.models import ScheduledJob, Subscription
from casedesk.store.unit_of_work import UnitOfWork

FAILING_AFTER = 3
"""Failures in a row after which a subscription is ``failing``."""
DELETE_ATTEMPTS = 5
"""A deletion that keeps failing is given up: the source's subscription expires by itself."""
ERROR_KEPT = 2_000
log = get_logger(__name__)


class LifecycleFailed(Exception):
    """A lifecycle call that did not do what it should; the message says what happened."""


_FAILURES = (LifecycleFailed, HubError, HookUnavailable)
"""What a lifecycle job counts as a failure and tries again later."""


@dataclass(frozen=True, slots=True)
class Made:
    external_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CaughtUp:
    items: list[TriggerItem]
    cursor: str | None
    more: bool
    """The run stopped at ``max_pages``: ``cursor`` is the next page, and another run follows."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _answer(response: httpx.Response, action: str) -> Any:
    try:
        return orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        raise LifecycleFailed(f"{action}: the answer is not JSON") from None


def _refused(response: httpx.Response, action: str) -> LifecycleFailed:
    return LifecycleFailed(f"{action} answered {response.status_code}: {response.text[:500]}")


class SubscriptionLifecycle:
    def __init__(self, database: Database, hub: Hub, box: SecretBox, *, public_url: str) -> None:
        self.database = database
        self.hub = hub
        self.box = box
        self.public_url = public_url
        """Where the source sends deliveries: ``CASEDESK_PUBLIC_URL``."""

    # --- the jobs ---------------------------------------------------------------------

    async def create_job(self, job: ScheduledJob) -> None:
        """``instant.create``: make the source's subscription (again, with ``recreate``)."""
        subscription_id = _subscription_id(job)
        recreate = bool(job.payload.get("recreate"))
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            subscription = await uow.subscriptions.find(subscription_id)
            if subscription is None or not is_active(subscription):
                return
            if recreate and subscription.external_id != job.payload.get("external_id"):
                return  # made again already
            if not recreate and subscription.external_id is not None:
                await self._keep_renewing(subscription_id, job)  # enabled again before its delete
                return
            try:
                resolved = await resolve(uow, self.hub, self.box, subscription)
                lifecycle = resolved.spec.lifecycle
                if lifecycle is None:
                    return
                made = await self._make(resolved, lifecycle, subscription, job)
                caught_up = await self._catch_up(resolved, lifecycle, subscription, job)
            except _FAILURES as failure:
                await self._failed(subscription_id, job, CREATE, str(failure))
                return
        baseline = not recreate and subscription.cursor is None
        replaces = subscription.external_id
        await self._made(
            subscription_id,
            job,
            made,
            caught_up,
            baseline=baseline,
            replaces=replaces,
            every=renew_every(lifecycle),
        )

    async def renew_job(self, job: ScheduledJob) -> None:
        """``instant.renew``: extend the source's subscription; gone: make it again, resync."""
        subscription_id = _subscription_id(job)
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            subscription = await uow.subscriptions.find(subscription_id)
            if subscription is None or not self._renewal_holds(subscription, job):
                return  # overtaken: stopped, made again or renewed by another path
            try:
                resolved = await resolve(uow, self.hub, self.box, subscription)
                lifecycle = resolved.spec.lifecycle
                if lifecycle is None:
                    return  # the trigger no longer keeps a subscription at the source
                made, caught_up = await self._renew(resolved, lifecycle, subscription, job)
            except _FAILURES as failure:
                await self._failed(subscription_id, job, RENEW, str(failure))
                return
        replaces = subscription.external_id
        await self._made(
            subscription_id,
            job,
            made,
            caught_up,
            baseline=False,
            replaces=replaces,
            every=renew_every(lifecycle),
        )

    async def resync_job(self, job: ScheduledJob) -> None:
        """``instant.resync``: catch up on what the source may not have delivered."""
        subscription_id = _subscription_id(job)
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            subscription = await uow.subscriptions.find(subscription_id)
            if subscription is None or not is_active(subscription):
                return
            try:
                resolved = await resolve(uow, self.hub, self.box, subscription)
                lifecycle = resolved.spec.lifecycle
                if lifecycle is None:
                    return
                caught_up = await self._catch_up(resolved, lifecycle, subscription, job)
            except _FAILURES as failure:
                await self._failed(subscription_id, job, RESYNC, str(failure))
                return
        if caught_up is None:
            return
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            locked = await uow.subscriptions.locked(subscription_id)
            if locked is None:
                return
            await _take(
                uow, locked, caught_up, _trace(job), baseline=bool(job.payload.get("baseline"))
            )
            record_success(uow, locked, trace=_trace(job))
            await uow.commit()

    async def delete_job(self, job: ScheduledJob) -> None:
        """``instant.delete``: the subscription stopped; delete the source's subscription."""
        subscription_id = _subscription_id(job)
        external_id = str(job.payload["external_id"])
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            subscription = await uow.subscriptions.find(subscription_id)
            if subscription is None:
                log.warning(
                    "a source subscription outlived its subscription", external_id=external_id
                )
                return
            if is_active(subscription) and subscription.external_id == external_id:
                return  # enabled again meanwhile: it is renewed instead
            try:
                resolved = await resolve(uow, self.hub, self.box, subscription)
                lifecycle = resolved.spec.lifecycle
                if lifecycle is None:
                    return
                await self._delete(resolved, lifecycle, subscription, external_id, job)
            except _FAILURES as failure:
                await self._delete_failed(subscription_id, job, str(failure))
                return
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            locked = await uow.subscriptions.locked(subscription_id)
            if locked is not None and locked.external_id == external_id:
                locked.external_id, locked.external_expires_at = None, None
            await uow.commit()

    # --- calls to the source ----------------------------------------------------------

    def _context(
        self, resolved: Resolved, lifecycle: Lifecycle, subscription: Subscription
    ) -> dict[str, Any]:
        try:
            token = instant.hook_token(subscription, self.box)
        except SecretUnreadable as exc:
            raise LifecycleFailed(f"the hook token cannot be opened: {exc}") from None
        if token is None:
            raise LifecycleFailed("the subscription has no hook token; enable it again")
        expires = subscription.external_expires_at
        return {
            "secrets": resolved.keys,
            "settings": dict(subscription.settings),
            "hook_url": instant.hook_url(self.public_url, token),
            "expiration": _iso(utcnow() + timedelta(seconds=lifecycle.lifetime_seconds)),
            "subscription": {
                "id": str(subscription.id),
                "external_id": subscription.external_id,
                "expires_at": None if expires is None else _iso(expires),
            },
        }

    async def _send(
        self,
        resolved: Resolved,
        template: RequestTemplate,
        context: Mapping[str, Any],
        action: str,
        job: ScheduledJob,
    ) -> httpx.Response:
        try:
            return await resolved.client.send(
                template, context, action=action, traceparent=_trace(job).child().traceparent
            )
        except ExpressionError as exc:
            raise LifecycleFailed(f"{action}: {exc}") from None

    async def _make(
        self,
        resolved: Resolved,
        lifecycle: Lifecycle,
        subscription: Subscription,
        job: ScheduledJob,
    ) -> Made:
        context = self._context(resolved, lifecycle, subscription)
        response = await self._send(resolved, lifecycle.create, context, "subscription.create", job)
        if not response.is_success:
            raise _refused(response, "creating the subscription")
        answer = _answer(response, "creating the subscription")
        external_id = select(lifecycle.external_id, answer)
        if not isinstance(external_id, str | int) or external_id in ("", None):
            raise LifecycleFailed(f"the answer has no subscription id at `{lifecycle.external_id}`")
        return Made(str(external_id), _expiry(lifecycle, answer))

    async def _renew(
        self,
        resolved: Resolved,
        lifecycle: Lifecycle,
        subscription: Subscription,
        job: ScheduledJob,
    ) -> tuple[Made, CaughtUp | None]:
        if lifecycle.renew is None:
            # The source renews by being asked again (Gmail's watch); whatever a lapse of the
            # old one kept from being delivered, the resync catches up on.
            made = await self._make(resolved, lifecycle, subscription, job)
            return made, await self._catch_up(resolved, lifecycle, subscription, job)
        context = self._context(resolved, lifecycle, subscription)
        response = await self._send(resolved, lifecycle.renew, context, "subscription.renew", job)
        if response.status_code in lifecycle.gone_statuses:
            log.warning(
                "source subscription gone at renewal: making it again and resyncing",
                subscription_id=str(subscription.id),
                external_id=subscription.external_id,
            )
            made = await self._make(resolved, lifecycle, subscription, job)
            return made, await self._catch_up(resolved, lifecycle, subscription, job)
        if not response.is_success:
            raise _refused(response, "renewing the subscription")
        answer = _answer(response, "renewing the subscription")
        assert subscription.external_id is not None  # the renewal's premise
        return Made(subscription.external_id, _expiry(lifecycle, answer)), None

    async def _delete(
        self,
        resolved: Resolved,
        lifecycle: Lifecycle,
        subscription: Subscription,
        external_id: str,
        job: ScheduledJob,
    ) -> None:
        if lifecycle.delete is None:
            return
        context = self._context(resolved, lifecycle, subscription)
        context["subscription"] = {**context["subscription"], "external_id": external_id}
        response = await self._send(resolved, lifecycle.delete, context, "subscription.delete", job)
        if response.is_success or response.status_code in lifecycle.gone_statuses:
            return
        raise _refused(response, "deleting the subscription")

    async def _catch_up(
        self,
        resolved: Resolved,
        lifecycle: Lifecycle,
        subscription: Subscription,
        job: ScheduledJob,
    ) -> CaughtUp | None:
        """A resync run: every item since the cursor, page after page (None: no resync).

        Without a cursor, a resync with a ``baseline`` only takes the cursor from it; a
        cursor the source refuses is replaced by a fresh baseline and, with ``full_sync``,
        what the source lists now fires (a bounded number of pages; the seen ids hold back
        what fired before)."""
        resync = lifecycle.resync
        if resync is None:
            return None
        cursor = None if subscription.cursor is None else subscription.cursor.get("value")
        context = self._context(resolved, lifecycle, subscription) | {"cursor": cursor}
        if cursor is None and resync.baseline is not None:
            return await self._baseline(resolved, resync, resync.baseline, context, job)
        response = await self._send(resolved, resync.request, context, "resync", job)
        if response.status_code in resync.stale_statuses and cursor is not None:
            log.info(
                "resync cursor refused; taking a fresh one",
                subscription_id=str(subscription.id),
                status=response.status_code,
            )
            context["cursor"] = cursor = None
            if resync.baseline is not None:
                fresh = await self._baseline(resolved, resync, resync.baseline, context, job)
                if resync.full_sync is None:
                    return fresh
                listed = await self._full_sync(resolved, resync.full_sync, context, job)
                return CaughtUp(listed, fresh.cursor, more=False)
            response = await self._send(resolved, resync.request, context, "resync", job)
        items: list[TriggerItem] = []
        for page in range(resync.max_pages):
            if not response.is_success:
                raise _refused(response, "the resync")
            answer = _answer(response, "the resync")
            items += _items(resync.items, resync.item_id, answer)
            following = select(resync.next_page, answer) if resync.next_page else None
            if not following:
                found = select(resync.next_cursor, answer) if resync.next_cursor else None
                return CaughtUp(items, str(found) if found else cursor, more=False)
            if page + 1 == resync.max_pages:
                if resync.next_page_param is not None:
                    # A page token is no cursor: the next resync starts from this one again.
                    log.warning("resync stopped at max_pages", subscription_id=str(subscription.id))
                    return CaughtUp(items, cursor, more=False)
                return CaughtUp(items, str(following), more=True)
            template, paged = _page(resync.request, resync.next_page_param, str(following))
            response = await self._send(resolved, template, context | paged, "resync", job)
        raise AssertionError("unreachable: the loop returns on its last page")

    async def _baseline(
        self,
        resolved: Resolved,
        resync: Resync,
        template: RequestTemplate,
        context: Mapping[str, Any],
        job: ScheduledJob,
    ) -> CaughtUp:
        """The cursor as the source gives it now, and no items."""
        response = await self._send(resolved, template, context, "resync.baseline", job)
        if not response.is_success:
            raise _refused(response, "the resync's baseline")
        answer = _answer(response, "the resync's baseline")
        found = select(resync.next_cursor, answer) if resync.next_cursor else None
        if found in (None, ""):
            raise LifecycleFailed(f"the baseline's answer has no cursor at `{resync.next_cursor}`")
        return CaughtUp([], str(found), more=False)

    async def _full_sync(
        self,
        resolved: Resolved,
        full_sync: FullSync,
        context: Mapping[str, Any],
        job: ScheduledJob,
    ) -> list[TriggerItem]:
        """What the source lists now, up to ``full_sync.max_pages`` pages."""
        template: RequestTemplate = full_sync.request
        paged: dict[str, Any] = {}
        items: list[TriggerItem] = []
        for _ in range(full_sync.max_pages):
            response = await self._send(resolved, template, {**context, **paged}, "full_sync", job)
            if not response.is_success:
                raise _refused(response, "the full sync")
            answer = _answer(response, "the full sync")
            items += _items(full_sync.items, full_sync.item_id, answer)
            following = select(full_sync.next_page, answer) if full_sync.next_page else None
            if not following:
                return items
            template, paged = _page(full_sync.request, full_sync.next_page_param, str(following))
        log.warning("full sync stopped at max_pages", pages=full_sync.max_pages)
        return items

    # --- outcomes ---------------------------------------------------------------------

    def _renewal_holds(self, subscription: Subscription, job: ScheduledJob) -> bool:
        return (
            is_active(subscription)
            and subscription.external_id is not None
            and subscription.external_id == job.payload.get("external_id")
            and expiry_mark(subscription.external_expires_at) == job.payload.get("expires")
        )

    async def _keep_renewing(self, subscription_id: uuid.UUID, job: ScheduledJob) -> None:
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            locked = await uow.subscriptions.locked(subscription_id)
            if locked is not None:
                await plan_renewal(uow, locked)
            await uow.commit()

    async def _made(
        self,
        subscription_id: uuid.UUID,
        job: ScheduledJob,
        made: Made,
        caught_up: CaughtUp | None,
        *,
        baseline: bool,
        replaces: str | None,
        every: timedelta | None = None,
    ) -> None:
        """Keep what the source made or renewed, unless the subscription was stopped, or its
        source subscription changed (``replaces`` is what it was), while the calls were out:
        then what this job made is deleted instead."""
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            subscription = await uow.subscriptions.locked(subscription_id)
            if subscription is None:
                return
            current = subscription.external_id
            overtaken = not is_active(subscription) or current != replaces
            if overtaken:
                if made.external_id == current:
                    return
                await plan(
                    uow,
                    DELETE,
                    subscription,
                    utcnow(),
                    tag=made.external_id,
                    external_id=made.external_id,
                )
                await uow.commit()
                return
            subscription.external_id = made.external_id
            subscription.external_expires_at = made.expires_at
            record_success(uow, subscription, trace=_trace(job))
            if caught_up is not None:
                await _take(uow, subscription, caught_up, _trace(job), baseline=baseline)
            await plan_renewal(uow, subscription, every=every)
            await uow.commit()

    async def _failed(
        self, subscription_id: uuid.UUID, job: ScheduledJob, kind: str, error: str
    ) -> None:
        """Count the failure, say so after FAILING_AFTER in a row, and try again later."""
        log.warning(
            "subscription lifecycle failed",
            kind=kind,
            subscription_id=str(subscription_id),
            error=error,
        )
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            subscription = await uow.subscriptions.locked(subscription_id)
            if subscription is None:
                return
            record_failure(uow, subscription, error, failing_after=FAILING_AFTER, trace=_trace(job))
            failures = subscription.consecutive_failures
            wait = timedelta(seconds=min(3600, 30 * 2 ** min(failures - 1, 7)))
            await plan(
                uow, kind, subscription, utcnow() + wait, tag=f"retry-{failures}", **_retried(job)
            )
            await uow.commit()

    async def _delete_failed(
        self, subscription_id: uuid.UUID, job: ScheduledJob, error: str
    ) -> None:
        attempt = int(job.payload.get("attempt", 1))
        log.warning("deleting a source subscription failed", attempt=attempt, error=error)
        if attempt >= DELETE_ATTEMPTS:
            return
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            subscription = await uow.subscriptions.find(subscription_id)
            if subscription is None:
                return
            payload = _retried(job) | {"attempt": attempt + 1}
            wait = timedelta(seconds=60 * 2**attempt)
            await plan(
                uow,
                DELETE,
                subscription,
                utcnow() + wait,
                tag=f"{payload['external_id']}-{attempt + 1}",
                **payload,
            )
            await uow.commit()


def _subscription_id(job: ScheduledJob) -> uuid.UUID:
    return uuid.UUID(str(job.payload["subscription_id"]))


def _retried(job: ScheduledJob) -> dict[str, Any]:
    return {key: value for key, value in job.payload.items() if key != "subscription_id"}


def _trace(job: ScheduledJob) -> TraceContext:
    return parse_traceparent(job.traceparent) or trace_or_new()


def _page(
    request: RequestTemplate, token_param: str | None, following: str
) -> tuple[RequestTemplate, dict[str, Any]]:
    """The request for the next page: ``request`` with the token in ``token_param``, or the
    URL ``following`` (with the request's headers)."""
    if token_param is None:
        return RequestTemplate(path="{{ page }}", headers=request.headers), {"page": following}
    query = dict(request.query) | {token_param: "{{ page_token }}"}
    return request.model_copy(update={"query": query}), {"page_token": following}


def expiry_of(lifecycle: Lifecycle, answer: Any) -> datetime | None:
    """When the answer says the subscription expires, written as ``expires_format`` says."""
    said = select(lifecycle.expires_at, answer) if lifecycle.expires_at else None
    if lifecycle.expires_format == "iso8601":
        return _moment(said)
    if isinstance(said, bool) or not isinstance(said, str | int | float):
        return None
    try:
        number = float(said)
    except ValueError:
        return None
    seconds = number / 1000 if lifecycle.expires_format == "epoch_ms" else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _expiry(lifecycle: Lifecycle, answer: Any) -> datetime:
    said = expiry_of(lifecycle, answer)
    return said or utcnow() + timedelta(seconds=lifecycle.lifetime_seconds)


def renew_every(lifecycle: Lifecycle) -> timedelta | None:
    every = lifecycle.renew_every_seconds
    return None if every is None else timedelta(seconds=every)


def _items(items_at: str, id_at: str, answer: Any) -> list[TriggerItem]:
    found = select(items_at, answer)
    if found is None:
        return []
    if not isinstance(found, list):
        raise LifecycleFailed(f"`{items_at}` is not a list")
    items = []
    for entity in found:
        item_id = select(id_at, entity)
        if item_id in (None, "", [], {}):
            continue  # nothing to tell it apart by: it cannot be deduplicated, so never fired
        items.append(
            TriggerItem(
                source_id_text(item_id), entity if isinstance(entity, dict) else {"value": entity}
            )
        )
    return items


async def _take(
    uow: UnitOfWork,
    subscription: Subscription,
    caught_up: CaughtUp,
    trace: TraceContext,
    *,
    baseline: bool,
) -> None:
    """A resync's items: fired (or, on the first run, remembered), with the cursor moved in
    the same transaction."""
    if baseline:
        await remember(uow, subscription, [item.source_id for item in caught_up.items])
    else:
        await fire(uow, subscription, caught_up.items, trace)
    subscription.cursor = {"value": caught_up.cursor}
    if caught_up.more:
        await plan(
            uow, RESYNC, subscription, utcnow(), tag=f"page-{caught_up.cursor}", baseline=baseline
        )

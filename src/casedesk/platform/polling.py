"""Polling triggers: a ``trigger.poll`` job per subscription, due every interval.

Starting a subscription schedules its first run now; stopping it calls off the pending run.
One run of ``Poller.run_job``:

1. reads the subscription (nothing happens when it is gone or disabled), its connection, the
   connector's manifest and the trigger's effective spec, and opens the connection's client;
   a connection that is not active (``needs_reauth``) pauses the subscription with a
   ``last_error`` that says so, and the source is not called;
2. sends the request(s) **outside any transaction** (templates see ``cursor``, ``settings``,
   ``connection`` and ``secrets``), follows the pages (a token in a query parameter, a URL in
   the answer, or the ``Link`` header) up to ``max_pages``, and takes each item and its id;
   a stale cursor (one of ``stale_statuses``) starts the run again without it, and a run cut
   at ``max_pages`` keeps its cursor and leaves the next run the page to go on from;
3. in **one transaction**, with the subscription's row locked, checks that no other run
   moved the cursor meanwhile (a worker whose lease ran out: its result is dropped), fires the
   items not seen before through ``intake.fire`` (the first run only remembers them, but for
   the ``backfill`` it asks for), stores the new cursor, clears the failures and plans the
   next run, then commits.

So a crash between fetching and committing repeats the fetch and loses nothing, and items are
told apart by their source ids only. A failed run is counted (``platform.health``) and the
next one waits: ``Retry-After`` on a 429 or 503, otherwise an exponential backoff.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from prometheus_client import Counter, Histogram

from casedesk.activities.connections import open_client
from casedesk.integrations.errors import HubError, OutboundRateLimited
from casedesk.integrations.expressions import ExpressionError, select
from casedesk.integrations.hub import Hub
from casedesk.integrations.manifests import ManifestInvalid, TriggerDef
from casedesk.integrations.manifests.common import RequestTemplate
from casedesk.integrations.manifests.polling import FullSync, PollingSpec
from casedesk.integrations.retry import RETRY_AFTER_STATUSES, parse_retry_after
from casedesk.integrations.runtime import ConnectorClient
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox, SecretUnreadable
from casedesk.kit.errors import CasedeskError, NotFound
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import TraceContext, new_trace, parse_traceparent, trace_or_new
from casedesk.platform.health import record_failure, record_success
from casedesk.platform.intake import TriggerItem, fire, remember
from casedesk.store.database import Database
from casedesk.store.jobs import PLANNED_AGAIN
from casedesk.store.models import Connection, ScheduledJob, Subscription
from casedesk.store.unit_of_work import UnitOfWork

POLL = "trigger.poll"
MAX_SOURCE_ID = 255
"""Characters of a source id kept as it is; a longer one is kept as its SHA-256."""
LONGEST_WAIT = timedelta(days=1)
"""The most a ``Retry-After`` may put the next run off."""
DEFAULT_INTERVAL = timedelta(seconds=PollingSpec.model_fields["interval_seconds"].default)

RUNS = Counter("casedesk_poll_runs_total", "Polling runs, by outcome", ["outcome"])
FIRED = Counter("casedesk_poll_items_fired_total", "Items polling runs handed to workflows")
LAG = Histogram(
    "casedesk_poll_lag_seconds",
    "How long after it was due a polling run started",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
log = get_logger(__name__)


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


class PollFailed(Exception):
    """A run that got no usable answer; says why, and when to come back if the source said."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


_SETUP_ERRORS = (PollFailed, CasedeskError, ManifestInvalid, ExpressionError, SecretUnreadable)
"""What keeps a subscription from running at all: a connector or trigger gone, settings the
trigger refuses, a secret that no key opens."""


class _StaleCursor(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"the source answered {status} for the cursor")
        self.status = status


@dataclass(frozen=True, slots=True)
class _Start:
    """The subscription as the run found it: what the commit checks nobody changed."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    trigger: str
    settings: dict[str, Any]
    cursor: dict[str, Any] | None
    """The stored cursor; None before the first run's baseline. ``{"value": …}``, plus
    ``resume`` (the page to go on from) when the last run stopped at ``max_pages``, and
    ``baseline`` when that run was still taking the baseline."""
    last_run_at: datetime | None

    @property
    def cursor_value(self) -> Any:
        return None if self.cursor is None else self.cursor.get("value")

    @property
    def resume(self) -> dict[str, str] | None:
        return None if self.cursor is None else self.cursor.get("resume")

    @property
    def in_baseline(self) -> bool:
        """Whether this run records the baseline: the first run, or its continuation."""
        return self.cursor is None or bool(self.cursor.get("baseline"))


@dataclass(frozen=True, slots=True)
class _Source:
    client: ConnectorClient
    spec: PollingSpec

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.spec.interval_seconds)


@dataclass(frozen=True, slots=True)
class _Paused:
    reason: str


@dataclass(frozen=True, slots=True)
class _Harvest:
    items: list[TriggerItem]
    """Every item of the run, in the order the source listed them."""
    cursor: dict[str, Any]
    """The cursor to store: ``{"value": …}``."""


@dataclass(frozen=True, slots=True)
class _Page:
    """One request of a run: the template to send and what its templates see."""

    template: RequestTemplate
    context: dict[str, Any]
    position: dict[str, str] | None = None
    """Where the page is, for a run to go on from it: ``{"url": …}`` or ``{"token": …}``."""


class Poller:
    def __init__(
        self,
        database: Database,
        hub: Hub,
        box: SecretBox,
        *,
        failing_after: int = 5,
        max_backoff: timedelta = timedelta(hours=1),
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.database = database
        self.hub = hub
        self.box = box
        self.failing_after = failing_after
        """Consecutive failed runs after which a subscription is ``failing``."""
        self.max_backoff = max_backoff
        self.jitter = jitter

    async def run_job(self, job: ScheduledJob) -> str | None:
        """``trigger.poll``: one run of one subscription (see the module's description).
        Returns ``PLANNED_AGAIN`` when the run planned the next one."""
        LAG.observe(max(0.0, (utcnow() - job.due_at).total_seconds()))
        trace = parse_traceparent(job.traceparent) or new_trace()
        subscription_id = uuid.UUID(str(job.payload["subscription_id"]))
        source: _Source | _Paused | PollFailed
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            found = await uow.subscriptions.with_workflow_and_connection(subscription_id)
            if found is None or not (_active(found[0]) and found[1]):
                RUNS.labels("skipped").inc()
                return None
            subscription, _enabled, connection = found
            start = _Start(
                subscription.id,
                subscription.tenant_id,
                subscription.trigger,
                dict(subscription.settings),
                subscription.cursor,
                subscription.last_run_at,
            )
            try:
                source = await self._source(uow, subscription, connection)
            except _SETUP_ERRORS as error:
                source = PollFailed(f"the trigger cannot run: {error}")
        if isinstance(source, _Paused):
            return await self._pause(start, source)
        if isinstance(source, PollFailed):
            return await self._failed(start, source, DEFAULT_INTERVAL, trace)
        try:
            harvest = await self._harvest(start, source, trace)
        except PollFailed as failure:
            return await self._failed(start, failure, source.interval, trace)
        return await self._commit(start, source, harvest, trace)

    async def _source(
        self, uow: UnitOfWork, subscription: Subscription, connection: Connection | None
    ) -> _Source | _Paused:
        if subscription.connection_id is not None:
            if connection is None:
                raise NotFound(f"connection {subscription.connection_id} not found")
            if connection.status != "active":
                return _Paused(_paused_reason(connection.id, connection.status))
        connector = (
            connection.connector if connection else await _workflow_connector(uow, subscription)
        )
        client = await open_client(
            uow,
            self.hub,
            self.box,
            tenant_id=subscription.tenant_id,
            connector=connector,
            connection_id=subscription.connection_id,
            connection=connection,
        )
        trigger = client.manifest.trigger(subscription.trigger)
        if trigger is None or trigger.kind != "polling":
            raise PollFailed(
                f"connector {client.manifest.id!r} has no polling trigger {subscription.trigger!r}"
            )
        spec = trigger.effective(subscription.settings)
        assert isinstance(spec, PollingSpec)
        return _Source(client, spec)

    async def _harvest(self, start: _Start, source: _Source, trace: TraceContext) -> _Harvest:
        """The run's items and next cursor; a stale cursor (or page to go on from) is dropped
        and the run starts again without it (the ids already seen keep anything from firing
        twice). Without either no answer is stale: a 404 then is a failure like any other."""
        try:
            return await self._fetch(start, source, start.cursor_value, start.resume, trace)
        except _StaleCursor as stale:
            RUNS.labels("resynced").inc()
            log.info(
                "polling cursor is stale; resyncing",
                subscription_id=str(start.id),
                status=stale.status,
            )
        fresh = await self._fetch(start, source, None, None, trace)
        full_sync = source.spec.full_sync
        if full_sync is None or start.in_baseline:
            return fresh
        return _Harvest(
            fresh.items + await self._full_sync(start, source, full_sync, trace), fresh.cursor
        )

    async def _full_sync(
        self, start: _Start, source: _Source, full_sync: FullSync, trace: TraceContext
    ) -> list[TriggerItem]:
        """What the source lists now, a bounded number of pages: fired unless seen (the fresh
        cursor was taken before, so nothing arriving meanwhile is missed)."""
        spec = source.spec.model_copy(
            update={
                "request": full_sync.request,
                "baseline": None,
                "query": {},
                "cursor_param": None,
                "items": full_sync.items,
                "item_id": full_sync.item_id,
                "next_page": full_sync.next_page,
                "next_page_param": full_sync.next_page_param,
                "link_header": False,
                "next_cursor": None,
                "max_pages": full_sync.max_pages,
            }
        )
        listed = await self._fetch(start, _Source(source.client, spec), None, None, trace)
        return listed.items

    async def _fetch(
        self,
        start: _Start,
        source: _Source,
        cursor: Any,
        resume: dict[str, str] | None,
        trace: TraceContext,
    ) -> _Harvest:
        spec = source.spec
        page: _Page | None = _first_page(spec, start.settings, cursor, resume)
        raw_items: list[Any] = []
        answer: Any = None
        headers: dict[str, str] = {}
        pages = 0
        while page is not None and pages < spec.max_pages:
            response = await self._send(source, start.trigger, page, trace)
            if response.status_code in spec.stale_statuses and (cursor, resume) != (None, None):
                raise _StaleCursor(response.status_code)
            answer = _answer(response, trace)
            headers = dict(response.headers)
            raw_items.extend(_items_of(spec, answer, trace))
            pages += 1
            page = _next_page(spec, page, answer, response, trace)
        items = [_trigger_item(spec, index, item, trace) for index, item in enumerate(raw_items)]
        if page is not None:
            # Pages are left: the next run goes on from the first of them with this cursor.
            # Moving the cursor now could skip what they hold (a newer-first list).
            RUNS.labels("cut").inc()
            log.warning(
                "polling run stopped at max_pages; the next run goes on from there",
                subscription_id=str(start.id),
                pages=pages,
            )
            cut = {"value": cursor, "resume": page.position, "baseline": start.in_baseline}
            return _Harvest(items, cut)
        next_cursor = None
        if spec.next_cursor is not None:
            scope = {"answer": answer, "items": raw_items, "cursor": cursor, "headers": headers}
            next_cursor = _select(spec.next_cursor, scope, trace)
        return _Harvest(items, {"value": cursor if next_cursor is None else next_cursor})

    async def _send(
        self, source: _Source, trigger: str, page: _Page, trace: TraceContext
    ) -> httpx.Response:
        try:
            return await source.client.send(
                page.template, page.context, action=trigger, traceparent=trace.traceparent
            )
        except OutboundRateLimited as error:
            raise PollFailed(str(error), retry_after=error.retry_after) from error
        except (HubError, ExpressionError, httpx.HTTPError) as error:
            raise PollFailed(f"{error} (trace {trace.trace_id})") from error

    async def _commit(
        self, start: _Start, source: _Source, harvest: _Harvest, trace: TraceContext
    ) -> str | None:
        async with UnitOfWork(self.database, start.tenant_id) as uow:
            await uow.begin_write()
            subscription = await uow.subscriptions.locked(start.id)
            if subscription is None or not _active(subscription):
                RUNS.labels("skipped").inc()
                return None
            if subscription.cursor != start.cursor:
                # Another run of this subscription got here first (this worker's lease ran
                # out while it fetched): its cursor stands, and this result is dropped.
                RUNS.labels("superseded").inc()
                log.info("polling run superseded by another", subscription_id=str(start.id))
                return None
            fired = await self._hand_over(uow, subscription, start, source.spec, harvest, trace)
            subscription.cursor = harvest.cursor
            record_success(uow, subscription, trace=trace)
            await self._plan(uow, subscription, source.interval)
            await uow.commit()
        RUNS.labels("fired" if fired else "idle").inc()
        FIRED.inc(fired)
        return PLANNED_AGAIN

    async def _hand_over(
        self,
        uow: UnitOfWork,
        subscription: Subscription,
        start: _Start,
        spec: PollingSpec,
        harvest: _Harvest,
        trace: TraceContext,
    ) -> int:
        """Fire the items not seen before; a first run fires only its backfill and
        remembers the rest as its baseline. Returns how many fired."""
        known = await uow.seen.known(subscription.id, [i.source_id for i in harvest.items])
        fresh = [item for item in harvest.items if item.source_id not in known]
        if start.in_baseline:
            first = start.cursor is None
            backfill = {i.source_id for i in harvest.items[: spec.backfill]} if first else set()
            to_fire = [item for item in fresh if item.source_id in backfill]
            baseline = [item.source_id for item in fresh if item.source_id not in backfill]
            await remember(uow, subscription, baseline)
        else:
            to_fire = fresh
        if not to_fire:
            return 0
        return len(await fire(uow, subscription, to_fire, trace))

    async def _failed(
        self, start: _Start, failure: PollFailed, interval: timedelta, trace: TraceContext
    ) -> str | None:
        RUNS.labels("failed").inc()
        log.warning("polling run failed", subscription_id=str(start.id), error=str(failure))
        async with UnitOfWork(self.database, start.tenant_id) as uow:
            await uow.begin_write()
            subscription = await uow.subscriptions.locked(start.id)
            if subscription is None or not _active(subscription):
                return None
            if subscription.last_run_at != start.last_run_at:
                return None  # another run finished meanwhile: its outcome stands
            record_failure(
                uow, subscription, str(failure), failing_after=self.failing_after, trace=trace
            )
            await self._plan(uow, subscription, self._wait(failure, interval, subscription))
            await uow.commit()
        return PLANNED_AGAIN

    def _wait(
        self, failure: PollFailed, interval: timedelta, subscription: Subscription
    ) -> timedelta:
        """How long until the next run: what the source asked for, else a backoff that
        doubles from the interval with every failure in a row, up to ``max_backoff``."""
        if failure.retry_after is not None:
            return min(max(timedelta(seconds=failure.retry_after), interval), LONGEST_WAIT)
        doublings = min(subscription.consecutive_failures - 1, 20)
        return min(interval * (1 << doublings), max(self.max_backoff, interval))

    async def _pause(self, start: _Start, paused: _Paused) -> str | None:
        """The connection cannot be used: say so, and look again a minute later without
        calling the source (no failure is counted: the connection's own status says why)."""
        RUNS.labels("paused").inc()
        async with UnitOfWork(self.database, start.tenant_id) as uow:
            await uow.begin_write()
            subscription = await uow.subscriptions.locked(start.id)
            if subscription is None or not _active(subscription):
                return None
            subscription.last_error = paused.reason
            await self._plan(uow, subscription, DEFAULT_INTERVAL)
            await uow.commit()
        return PLANNED_AGAIN

    async def _plan(self, uow: UnitOfWork, subscription: Subscription, wait: timedelta) -> None:
        """The next run, a little later than ``wait`` (up to a tenth, at most 30 s more), so
        that subscriptions started together do not stay in step."""
        spread = self.jitter(0.0, min(wait.total_seconds() / 10, 30.0))
        await uow.jobs.schedule_again(
            kind=POLL,
            key=poll_key(subscription.id),
            due_at=utcnow() + wait + timedelta(seconds=spread),
            payload={"subscription_id": str(subscription.id)},
            traceparent=new_trace().traceparent,
        )


def _active(subscription: Subscription) -> bool:
    return subscription.enabled and subscription.status != "disabled"


async def _workflow_connector(uow: UnitOfWork, subscription: Subscription) -> str:
    """The connector a subscription without a connection polls: its workflow's trigger's."""
    workflow = await uow.workflows.get(subscription.workflow_id)
    version = await uow.workflows.version(workflow.id, workflow.latest_version)
    trigger = (version.definition if version else {}).get("trigger") or {}
    connector = trigger.get("connector") if isinstance(trigger, dict) else None
    if not isinstance(connector, str):
        raise PollFailed("the subscription has no connection and its workflow names no connector")
    return connector


def _paused_reason(connection_id: uuid.UUID, status: str) -> str:
    if status == "needs_reauth":
        return (
            f"paused: connection {connection_id} needs to be authorized again; polling resumes "
            "by itself once it is"
        )
    return f"paused: connection {connection_id} is {status}"


def _first_page(
    spec: PollingSpec, settings: Mapping[str, Any], cursor: Any, resume: dict[str, str] | None
) -> _Page:
    """The run's first request: ``baseline`` when there is no cursor and the trigger has one,
    else ``request``, with the trigger's fixed query and the cursor's parameter added; or,
    when the last run stopped at ``max_pages``, the page it would have read next.

    Query names cannot be templates, so the added parameters are templates over the run's
    own ``poll`` context."""
    template = spec.baseline if cursor is None and spec.baseline is not None else spec.request
    query = dict(template.query)
    for index, name in enumerate(spec.query):
        query[name] = f"{{{{ poll.query[{index}] }}}}"
    if spec.cursor_param is not None and cursor is not None:
        query[spec.cursor_param] = "{{ poll.cursor }}"
    poll = {"query": list(spec.query.values()), "cursor": _as_parameter(cursor)}
    context = {"cursor": cursor, "settings": dict(settings), "poll": poll}
    page = _Page(template.model_copy(update={"query": query}), context)
    if resume is not None and "url" in resume:
        return _url_page(page, resume["url"])
    if resume is not None and "token" in resume and spec.next_page_param is not None:
        return _token_page(spec, page, resume["token"])
    return page  # nothing to go on from (or the settings no longer page by token)


def _next_page(
    spec: PollingSpec, page: _Page, answer: Any, response: httpx.Response, trace: TraceContext
) -> _Page | None:
    """The next request of the run, or None on the last page."""
    if spec.link_header:
        link = response.links.get("next", {}).get("url")
        return _page_at(page, response, link) if link else None
    if spec.next_page is None:
        return None
    token = _select(spec.next_page, answer, trace)
    if token in (None, ""):
        return None
    if spec.next_page_param is None:
        return _page_at(page, response, str(token))
    return _token_page(spec, page, _as_parameter(token) or "")


def _token_page(spec: PollingSpec, page: _Page, token: str) -> _Page:
    """The same request with the next page's token in ``next_page_param``."""
    assert spec.next_page_param is not None
    query = dict(page.template.query)
    query[spec.next_page_param] = "{{ poll.page_token }}"
    context = {**page.context, "poll": {**page.context["poll"], "page_token": token}}
    template = page.template.model_copy(update={"query": query})
    return _Page(template, context, {"token": token})


def _page_at(page: _Page, response: httpx.Response, link: str) -> _Page:
    """A request for the page at ``link`` (relative to the answer's URL), on the same origin:
    the connection's credentials go nowhere else."""
    here = response.request.url
    try:
        there = here.join(link)
    except httpx.InvalidURL as error:
        raise PollFailed(f"the next page's link {link!r} is not a URL: {error}") from None
    if (there.scheme, there.host, there.port) != (here.scheme, here.host, here.port):
        raise PollFailed(f"the next page is on another origin ({there.scheme}://{there.host})")
    return _url_page(page, str(there))


def _url_page(page: _Page, url: str) -> _Page:
    """The request for the page at an absolute URL that carries its own query."""
    context = {**page.context, "poll": {**page.context["poll"], "next_url": url}}
    template = page.template.model_copy(update={"path": "{{ poll.next_url }}", "query": {}})
    return _Page(template, context, {"url": url})


def _answer(response: httpx.Response, trace: TraceContext) -> Any:
    if response.status_code in RETRY_AFTER_STATUSES:
        raise PollFailed(
            f"the source answered {response.status_code} (trace {trace.trace_id})",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    if not response.is_success:
        raise PollFailed(f"the source answered {response.status_code} (trace {trace.trace_id})")
    if response.status_code == 204 or not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise PollFailed(f"the source's answer is not JSON (trace {trace.trace_id})") from None


def _items_of(spec: PollingSpec, answer: Any, trace: TraceContext) -> list[Any]:
    items = _select(spec.items, answer, trace)
    if items is None:
        return []
    if not isinstance(items, list):
        raise PollFailed(
            f"`{spec.items}` gives a {type(items).__name__}, not a list of items "
            f"(trace {trace.trace_id})"
        )
    return items


def _trigger_item(spec: PollingSpec, index: int, item: Any, trace: TraceContext) -> TriggerItem:
    raw = _select(spec.item_id, item, trace)
    if raw is None or raw == "" or isinstance(raw, bool | dict | list):
        raise PollFailed(
            f"item {index} of the run has no id at `{spec.item_id}` (trace {trace.trace_id})"
        )
    return TriggerItem(_source_id(str(raw)), item if isinstance(item, dict) else {"value": item})


def _source_id(raw: str) -> str:
    """The id as it is, or ``sha256:<hex>`` when it is too long to keep or ends in a space
    (MariaDB compares trailing spaces away)."""
    if len(raw) <= MAX_SOURCE_ID and raw == raw.rstrip(" "):
        return raw
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def _select(selection: str, data: Any, trace: TraceContext) -> Any:
    try:
        return select(selection, data)
    except ExpressionError as error:
        raise PollFailed(f"{error} (trace {trace.trace_id})") from None


def _as_parameter(value: Any) -> str | None:
    """A cursor or page token as a query parameter's text."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()

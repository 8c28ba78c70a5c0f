"""Polling triggers against a real HTTP server on 127.0.0.1, on every database.

The source is the local server, scripted run by run with what a real API would answer for
the cursor the run sends. Each run is the ``trigger.poll`` job's handler, called as the
scheduler calls it; what fired is read from the executions the runs queued.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from casedesk.bootstrap import Container, job_handlers
from casedesk.config import load_settings
from casedesk.integrations.catalogue import builtin
from casedesk.integrations.hub import Hub
from casedesk.kit.clock import utcnow
from casedesk.platform import polling
from casedesk.platform.health import FAILING, RECOVERED
from casedesk.platform.polling import POLL, Poller, poll_key
from casedesk.store.models import (
    Connection,
    Connector,
    ConnectorVersion,
    Execution,
    OutboxEvent,
    ScheduledJob,
    SeenItem,
    Subscription,
    Workflow,
)
from casedesk.store.tenancy import bound_tenant
from casedesk.traces.buffer import TraceBuffer
from casedesk.worker.scheduler import Scheduler
from tests.conftest import Tenants
from tests.support.http_server import LocalHTTPServer, Reply, local_http_server


@pytest.fixture(scope="module")
async def shared_server() -> AsyncIterator[LocalHTTPServer]:
    async with local_http_server() as server:
        yield server


@pytest.fixture
def server(shared_server: LocalHTTPServer) -> LocalHTTPServer:
    shared_server.reset()
    return shared_server


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    # One attempt per call: a polling run is retried by its own schedule.
    settings = load_settings(outbound_allowed_networks="127.0.0.0/8", outbound_max_attempts=1)
    async with Hub(settings, recorder=TraceBuffer(1000)) as hub:
        yield hub


@pytest.fixture
def poller(container: Container, hub: Hub) -> Poller:
    return Poller(container.database, hub, container.box, failing_after=3, jitter=lambda a, b: a)


class Source:
    """One subscription of the generic REST poller, and what its runs did."""

    def __init__(
        self, container: Container, poller: Poller, server: LocalHTTPServer, sub: Subscription
    ) -> None:
        self.container = container
        self.poller = poller
        self.server = server
        self.subscription = sub
        self.tenant_id = sub.tenant_id

    async def job(self) -> ScheduledJob:
        async with self.container.unit_of_work(self.tenant_id) as uow:
            job = await uow.jobs.find(poll_key(self.subscription.id))
        assert job is not None
        return job

    async def run(self, *replies: Reply, path: str = "/items") -> None:
        """One run of the trigger.poll job, the source answering ``replies`` in turn."""
        if replies:
            self.server.script(path, *replies)
        await self.poller.run_job(await self.job())

    async def fired(self) -> list[str]:
        async with self.container.unit_of_work(self.tenant_id) as uow:
            rows = await uow.session.scalars(
                select(Execution.source_id)
                .where(Execution.subscription_id == self.subscription.id)
                .order_by(Execution.id)
            )
            return [str(source_id) for source_id in rows.all()]

    async def executions(self) -> list[Execution]:
        async with self.container.unit_of_work(self.tenant_id) as uow:
            rows = await uow.session.scalars(
                select(Execution).where(Execution.subscription_id == self.subscription.id)
            )
            return list(rows.all())

    async def state(self) -> Subscription:
        async with self.container.unit_of_work(self.tenant_id) as uow:
            return await uow.subscriptions.get(self.subscription.id)

    async def seen(self) -> set[str]:
        async with self.container.unit_of_work(self.tenant_id) as uow:
            rows = await uow.session.scalars(
                select(SeenItem.source_id).where(SeenItem.subscription_id == self.subscription.id)
            )
            return set(rows.all())

    async def events(self, event_type: str) -> list[OutboxEvent]:
        async with self.container.unit_of_work(self.tenant_id) as uow:
            rows = await uow.session.scalars(
                select(OutboxEvent).where(
                    OutboxEvent.subject_id == self.subscription.id, OutboxEvent.type == event_type
                )
            )
            return list(rows.all())

    def queries(self, path: str = "/items") -> list[dict[str, list[str]]]:
        return [parse_qs(received.query) for received in self.server.requests_to(path)]

    async def change(self, **values: Any) -> None:
        async with self.container.unit_of_work(self.tenant_id) as uow:
            await uow.begin_write()
            subscription = await uow.subscriptions.get(self.subscription.id)
            for name, value in values.items():
                setattr(subscription, name, value)
            await uow.commit()

    async def set_connection_status(self, status: str) -> None:
        async with self.container.unit_of_work(self.tenant_id) as uow:
            await uow.begin_write()
            assert self.subscription.connection_id is not None
            connection = await uow.connections.get(self.subscription.connection_id)
            connection.status = status
            await uow.commit()


MakeSource = Callable[..., Awaitable[Source]]


@pytest.fixture
async def make_source(
    container: Container, tenants: Tenants, poller: Poller, server: LocalHTTPServer
) -> AsyncIterator[MakeSource]:
    made: list[uuid.UUID] = []

    async def make(connector: str = "rest", **settings: Any) -> Source:
        tenant = await tenants.create()
        made.append(tenant.id)
        settings.setdefault("path", "/items")
        async with container.unit_of_work(tenant.id) as uow:
            await uow.begin_write()
            workflow = uow.workflows.add(
                Workflow(code=f"w{uuid.uuid4().hex[:8]}", name="w", draft={}, latest_version=1)
            )
            connection = uow.connections.add(
                Connection(
                    name="api",
                    connector=connector,
                    connector_version=1,
                    settings={"base_url": server.url},
                )
            )
            await uow.flush()
            subscription = uow.subscriptions.add(
                Subscription(
                    workflow_id=workflow.id,
                    connection_id=connection.id,
                    trigger="new_item",
                    settings=settings,
                )
            )
            await uow.flush()
            trigger = builtin("rest").triggers["new_item"]  # type: ignore[union-attr]
            await polling.start(uow, subscription, trigger, container.box)
            await uow.commit()
        return Source(container, poller, server, subscription)

    yield make
    # The runs queued executions and planned polls: no other module's scheduler should run them.
    for tenant_id in made:
        async with container.unit_of_work(tenant_id) as uow:
            await uow.begin_write()
            await uow.session.execute(update(ScheduledJob).values(status="cancelled"))
            await uow.commit()


def item(item_id: str, updated: int = 0, **fields: Any) -> dict[str, Any]:
    return {"id": item_id, "updated_at": f"2026-01-01T00:00:{updated:02d}Z", **fields}


def listing(*items: dict[str, Any], **extra: Any) -> Reply:
    return Reply.json({"data": list(items), **extra})


CURSOR_SETTINGS = {
    "items": "data",
    "cursor_param": "since",
    "next_cursor": "max(items[].updated_at)",
}


async def test_a_first_run_records_a_baseline_and_fires_nothing(make_source: MakeSource) -> None:
    source = await make_source(items="data")
    before = utcnow()

    await source.run(listing(item("a"), item("b"), item("c")))

    assert await source.fired() == []
    assert await source.seen() == {"a", "b", "c"}
    state = await source.state()
    assert state.cursor == {"value": None}
    assert state.last_run_at is not None
    job = await source.job()
    assert job.status == "pending"
    assert before + timedelta(seconds=60) <= job.due_at <= utcnow() + timedelta(seconds=61)
    await source.run(listing(item("d"), item("a"), item("b"), item("c")))
    assert await source.fired() == ["d"]


async def test_the_worker_runs_polls_through_the_job_table(
    make_source: MakeSource, container: Container
) -> None:
    source = await make_source(items="data")
    source.server.script("/items", listing(item("a")))
    scheduler = Scheduler(container.database, {POLL: job_handlers(container)[POLL]})

    while await scheduler.run_once():
        pass

    assert await source.seen() == {"a"}
    job = await source.job()
    assert (job.status, job.attempts) == ("pending", 0)
    assert job.due_at > utcnow() + timedelta(seconds=50)


async def test_a_backfill_fires_the_first_items_of_the_first_run_and_remembers_the_rest(
    make_source: MakeSource,
) -> None:
    source = await make_source(items="data", backfill=2)

    await source.run(listing(item("new"), item("newer"), item("old"), item("oldest")))

    assert await source.fired() == ["new", "newer"]
    assert await source.seen() == {"new", "newer", "old", "oldest"}


@pytest.mark.parametrize("order", ["newer_first", "older_first"])
async def test_items_in_any_order_and_with_equal_timestamps_fire_each_exactly_once(
    make_source: MakeSource,
    order: str,
) -> None:
    source = await make_source(**CURSOR_SETTINGS)
    history: list[dict[str, Any]] = []

    def answer_for(since: str | None) -> Reply:
        """What an API with an inclusive `since` answers."""
        kept = [i for i in history if since is None or i["updated_at"] >= since]
        kept.sort(key=lambda i: i["updated_at"], reverse=order == "newer_first")
        return listing(*kept)

    expected_since: list[str | None] = []
    for arrivals, since in [
        ([item("a", 10), item("b", 20)], None),  # the baseline
        ([item("c", 20), item("d", 30)], "2026-01-01T00:00:20Z"),  # c: b's timestamp, later
        ([item("e", 30), item("f", 30)], "2026-01-01T00:00:30Z"),  # two more at d's
        ([], "2026-01-01T00:00:30Z"),  # nothing new: d, e, f come again
        ([item("g", 40)], "2026-01-01T00:00:30Z"),
    ]:
        history.extend(arrivals)
        expected_since.append(since)
        await source.run(answer_for(since))

    assert sorted(await source.fired()) == ["c", "d", "e", "f", "g"]
    assert [q.get("since", [None])[0] for q in source.queries()] == expected_since
    assert (await source.state()).cursor == {"value": "2026-01-01T00:00:40Z"}


@pytest.fixture
def failing_commit() -> Iterator[dict[str, Any]]:
    """Makes the next commit of a chosen tenant's session fail, once."""
    plan: dict[str, Any] = {"tenant": None, "failed": 0}

    def fail_once(session: Session) -> None:
        if plan["tenant"] is not None and bound_tenant(session) == plan["tenant"]:
            plan["tenant"] = None
            plan["failed"] += 1
            raise RuntimeError("the database went away before the commit")

    event.listen(Session, "before_commit", fail_once)
    yield plan
    event.remove(Session, "before_commit", fail_once)


async def test_a_crash_after_fetching_and_before_committing_repeats_nothing_and_loses_nothing(
    make_source: MakeSource,
    failing_commit: dict[str, Any],
) -> None:
    source = await make_source(**CURSOR_SETTINGS)
    await source.run(listing(item("a", 10)))
    failing_commit["tenant"] = source.tenant_id

    with pytest.raises(RuntimeError, match="went away"):
        await source.run(listing(item("a", 10), item("b", 20), item("c", 30)))

    assert failing_commit["failed"] == 1
    assert await source.fired() == []
    assert await source.seen() == {"a"}
    assert (await source.state()).cursor == {"value": "2026-01-01T00:00:10Z"}
    await source.run()  # the job runs again: the same answer
    await source.run()
    assert await source.fired() == ["b", "c"]
    assert [q["since"] for q in source.queries()[1:]] == [["2026-01-01T00:00:10Z"]] * 2 + [
        ["2026-01-01T00:00:30Z"]
    ]


async def test_two_workers_racing_on_one_subscription_fire_each_item_once(
    make_source: MakeSource,
) -> None:
    source = await make_source(items="data", next_cursor="answer.cursor", cursor_param="after")
    await source.run(listing(item("a"), cursor="c0"))
    job = await source.job()
    # The slower answer is the older one: were it committed last, the cursor would go back.
    slow = Reply(
        200,
        b'{"data": [{"id": "b"}], "cursor": "c1"}',
        {"content-type": "application/json"},
        delay=0.5,
    )
    source.server.script("/items", slow, listing(item("b"), item("c"), cursor="c2"))

    await asyncio.gather(source.poller.run_job(job), source.poller.run_job(job))

    assert sorted(await source.fired()) == ["b", "c"]
    assert (await source.state()).cursor == {"value": "c2"}
    assert [q["after"] for q in source.queries()[1:]] == [["c0"], ["c0"]]


async def test_a_republished_workflow_with_new_settings_keeps_its_cursor(
    make_source: MakeSource,
    container: Container,
) -> None:
    source = await make_source(**CURSOR_SETTINGS)
    await source.run(listing(item("a", 10)))
    async with container.unit_of_work(source.tenant_id) as uow:
        await uow.begin_write()
        workflow = await uow.workflows.get(source.subscription.workflow_id)
        workflow.latest_version = 2
        await uow.commit()
    await source.change(settings={**CURSOR_SETTINGS, "path": "/items", "query": {"state": "open"}})

    await source.run(listing(item("a", 10), item("b", 20)))

    (execution,) = await source.executions()
    assert (execution.source_id, execution.workflow_version) == ("b", 2)
    assert source.queries()[1] == {"since": ["2026-01-01T00:00:10Z"], "state": ["open"]}
    assert (await source.state()).cursor == {"value": "2026-01-01T00:00:20Z"}


@pytest.mark.parametrize("status", [404, 410])
async def test_a_stale_cursor_resyncs_without_duplicates(
    make_source: MakeSource,
    status: int,
) -> None:
    source = await make_source(items="data", next_cursor="answer.cursor", cursor_param="after")
    await source.run(listing(item("a"), item("b"), cursor="c1"))

    await source.run(
        Reply.json({"error": "cursor expired"}, status=status),
        listing(item("a"), item("b"), item("c"), cursor="c2"),
    )

    assert await source.fired() == ["c"]
    assert [q.get("after") for q in source.queries()] == [None, ["c1"], None]
    state = await source.state()
    assert (state.cursor, state.consecutive_failures) == ({"value": "c2"}, 0)


async def test_a_stale_answer_without_a_cursor_is_a_failure(make_source: MakeSource) -> None:
    source = await make_source(items="data")

    await source.run(Reply.json({"error": "no such list"}, status=404))

    state = await source.state()
    assert state.cursor is None
    assert state.consecutive_failures == 1
    assert "answered 404" in (state.last_error or "")


BASELINE_MANIFEST = {
    "id": "mailbox",
    "name": "Mailbox",
    "base_url": "{{ connection.base_url }}",
    "triggers": {
        "new_item": {
            "kind": "polling",
            "polling": {
                "baseline": {"path": "/profile"},
                "request": {"path": "/history", "query": {"start": "{{ cursor }}"}},
                "items": "history[].message",
                "next_cursor": "answer.historyId",
            },
        }
    },
}


async def test_a_baseline_request_gives_the_first_cursor_and_the_new_one_after_a_resync(
    make_source: MakeSource,
    container: Container,
) -> None:
    source = await make_source(connector="mailbox")
    async with container.unit_of_work(source.tenant_id) as uow:
        await uow.begin_write()
        connector = uow.connectors.add(
            Connector(code="mailbox", name="Mailbox", draft=BASELINE_MANIFEST, latest_version=1)
        )
        await uow.flush()
        uow.connectors.add_version(
            ConnectorVersion(connector_id=connector.id, version=1, manifest=BASELINE_MANIFEST)
        )
        await uow.commit()
    server = source.server
    server.script("/profile", Reply.json({"historyId": "100"}), Reply.json({"historyId": "300"}))

    await source.run()
    await source.run(
        Reply.json({"history": [{"message": {"id": "m1"}}], "historyId": "200"}),
        Reply.json({"error": "historyId too old"}, status=404),
        path="/history",
    )
    await source.run()

    assert await source.fired() == ["m1"]
    assert [q.get("start") for q in source.queries("/history")] == [["100"], ["200"]]
    assert len(server.requests_to("/profile")) == 2  # the first run and the resync
    assert (await source.state()).cursor == {"value": "300"}


FULL_SYNC_MANIFEST = {
    **BASELINE_MANIFEST,
    "triggers": {
        "new_item": {
            "kind": "polling",
            "polling": {
                **BASELINE_MANIFEST["triggers"]["new_item"]["polling"],  # type: ignore[index]
                "full_sync": {
                    "request": {"path": "/messages"},
                    "items": "messages",
                    "next_page": "next",
                    "next_page_param": "page",
                    "max_pages": 2,
                },
            },
        }
    },
}


async def test_a_refused_cursor_takes_a_fresh_one_then_lists_a_bounded_full_sync(
    make_source: MakeSource,
    container: Container,
) -> None:
    source = await make_source(connector="mailbox")
    async with container.unit_of_work(source.tenant_id) as uow:
        await uow.begin_write()
        connector = uow.connectors.add(
            Connector(code="mailbox", name="Mailbox", draft=FULL_SYNC_MANIFEST, latest_version=1)
        )
        await uow.flush()
        uow.connectors.add_version(
            ConnectorVersion(connector_id=connector.id, version=1, manifest=FULL_SYNC_MANIFEST)
        )
        await uow.commit()
    server = source.server
    server.script("/profile", Reply.json({"historyId": "100"}), Reply.json({"historyId": "300"}))
    server.script(
        "/messages",
        Reply.json({"messages": [{"id": "m3"}, {"id": "m1"}], "next": "p2"}),
        Reply.json({"messages": [{"id": "m0"}], "next": "p3"}),
        Reply.json({"messages": [{"id": "never"}]}),
    )

    await source.run()  # the baseline: the profile's historyId, nothing listed
    assert server.requests_to("/messages") == []
    await source.run(
        Reply.json({"history": [{"message": {"id": "m1"}}], "historyId": "200"}),
        Reply.json({"error": "historyId too old"}, status=404),
        Reply.json({"history": [{"message": {"id": "m4"}}], "historyId": "400"}),
        path="/history",
    )
    assert await source.fired() == ["m1"]
    await source.run()  # 404: a fresh cursor, then at most two pages of what is there now
    assert await source.fired() == ["m1", "m3", "m0"]
    assert [q.get("page") for q in source.queries("/messages")] == [None, ["p2"]]
    assert (await source.state()).cursor == {"value": "300"}
    await source.run()  # on from the fresh cursor
    assert [q.get("start") for q in source.queries("/history")] == [["100"], ["200"], ["300"]]
    assert await source.fired() == ["m1", "m3", "m0", "m4"]


async def test_retry_after_is_honoured_for_the_next_run(make_source: MakeSource) -> None:
    source = await make_source(items="data")
    await source.run(listing(item("a")))

    await source.run(Reply.json({"error": "slow down"}, status=429, headers={"Retry-After": "900"}))

    job = await source.job()
    assert timedelta(seconds=899) <= job.due_at - utcnow() <= timedelta(seconds=900)
    state = await source.state()
    assert state.consecutive_failures == 1
    assert "answered 429" in (state.last_error or "")
    await source.run(Reply.json({"error": "down"}, status=503, headers={"Retry-After": "5"}))
    job = await source.job()  # less than the interval: the interval still stands
    assert timedelta(seconds=59) <= job.due_at - utcnow() <= timedelta(seconds=60)


async def test_other_failures_back_off_exponentially_up_to_the_cap(
    make_source: MakeSource,
    container: Container,
    hub: Hub,
) -> None:
    source = await make_source(items="data")
    source.poller = Poller(
        container.database,
        hub,
        container.box,
        failing_after=10,
        max_backoff=timedelta(seconds=200),
        jitter=lambda low, high: low,
    )
    waits = []
    for _ in range(4):
        await source.run(Reply.json({"error": "boom"}, status=500))
        waits.append(round(((await source.job()).due_at - utcnow()).total_seconds()))
    assert waits == [60, 120, 200, 200]


async def test_the_next_run_is_spread_a_little_past_the_interval(
    make_source: MakeSource,
    container: Container,
    hub: Hub,
) -> None:
    source = await make_source(items="data")
    spreads: list[tuple[float, float]] = []

    def jitter(low: float, high: float) -> float:
        spreads.append((low, high))
        return high

    source.poller = Poller(container.database, hub, container.box, jitter=jitter)
    await source.run(listing(item("a")))

    assert spreads == [(0.0, 6.0)]
    wait = (await source.job()).due_at - utcnow()
    assert timedelta(seconds=65) <= wait <= timedelta(seconds=66)


async def test_a_subscription_is_failing_after_n_failures_and_recovers_by_itself(
    make_source: MakeSource,
) -> None:
    source = await make_source(items="data")
    await source.run(listing(item("a")))

    for _ in range(2):
        await source.run(Reply.json({"error": "boom"}, status=500))
    assert (await source.state()).status == "active"
    for _ in range(2):
        await source.run()
    state = await source.state()
    assert (state.status, state.consecutive_failures) == ("failing", 4)
    assert "answered 500" in (state.last_error or "")
    (failing,) = await source.events(FAILING)
    assert failing.subject_type == "subscription"
    assert failing.data["consecutive_failures"] == 3
    assert failing.data["subscription"]["status"] == "failing"

    await source.run(listing(item("a"), item("b")))
    await source.run()

    state = await source.state()
    assert (state.status, state.consecutive_failures, state.last_error) == ("active", 0, None)
    (recovered,) = await source.events(RECOVERED)
    assert recovered.data["failures"] == 4
    assert len(await source.events(FAILING)) == 1
    assert await source.fired() == ["b"]


async def test_a_connection_that_needs_reauthorizing_pauses_the_subscription(
    make_source: MakeSource,
) -> None:
    source = await make_source(items="data")
    await source.run(listing(item("a")))
    await source.set_connection_status("needs_reauth")

    await source.run(listing(item("a"), item("b")))
    await source.run()

    assert len(source.server.requests_to("/items")) == 1  # the source was left alone
    state = await source.state()
    assert (state.status, state.consecutive_failures) == ("active", 0)
    assert "needs to be authorized again" in (state.last_error or "")
    assert (await source.job()).status == "pending"
    await source.set_connection_status("active")
    await source.run()
    assert await source.fired() == ["b"]
    assert (await source.state()).last_error is None


async def test_a_disabled_subscription_is_not_polled(make_source: MakeSource) -> None:
    source = await make_source(items="data")
    await source.change(enabled=False)

    await source.run(listing(item("a")))

    assert source.server.requests_to("/items") == []
    assert (await source.state()).cursor is None


async def test_link_header_pages_are_followed(make_source: MakeSource) -> None:
    source = await make_source(items="data", link_header=True)
    url = source.server.url

    def page_one(link: str, *items: dict[str, Any]) -> Reply:
        return Reply.json({"data": list(items)}, headers={"Link": f'<{link}>; rel="next"'})

    # A relative link is resolved against the page's own URL.
    await source.run(page_one("/items?page=2", item("a")), listing(item("b")))
    await source.run(
        page_one(f"{url}/items?page=2", item("c"), item("a")), listing(item("b"), item("d"))
    )

    assert await source.fired() == ["c", "d"]
    assert [q.get("page") for q in source.queries()] == [None, ["2"], None, ["2"]]


async def test_page_tokens_are_followed_with_the_runs_other_parameters(
    make_source: MakeSource,
) -> None:
    source = await make_source(
        **CURSOR_SETTINGS,
        next_page="next_token",
        next_page_param="page_token",
        query={"state": "open"},
    )
    await source.run(listing(item("a", 10)))

    await source.run(
        listing(item("a", 10), item("b", 20), next_token="p2"),
        listing(item("c", 30), next_token="p3"),
        listing(item("d", 40)),
    )

    assert await source.fired() == ["b", "c", "d"]
    since = "2026-01-01T00:00:10Z"
    assert source.queries()[1:] == [
        {"state": ["open"], "since": [since]},
        {"state": ["open"], "since": [since], "page_token": ["p2"]},
        {"state": ["open"], "since": [since], "page_token": ["p3"]},
    ]
    assert (await source.state()).cursor == {"value": "2026-01-01T00:00:40Z"}


async def test_a_run_cut_at_max_pages_goes_on_from_there_and_misses_nothing(
    make_source: MakeSource,
) -> None:
    source = await make_source(
        **CURSOR_SETTINGS, next_page="next_token", next_page_param="page_token", max_pages=2
    )
    await source.run(listing(item("a", 10)))
    since = "2026-01-01T00:00:10Z"

    # Newer first, three pages: moving the cursor to the newest would skip the third.
    await source.run(
        listing(item("f", 60), item("e", 50), next_token="p2"),
        listing(item("d", 40), item("c", 30), next_token="p3"),
        listing(item("b", 20), item("a", 10)),
    )
    state = await source.state()
    assert state.cursor == {"value": since, "resume": {"token": "p3"}, "baseline": False}
    await source.run()
    await source.run(listing(item("g", 70), item("f", 60)))

    assert sorted(await source.fired()) == ["b", "c", "d", "e", "f", "g"]
    assert [(q["since"], q.get("page_token")) for q in source.queries()[1:]] == [
        ([since], None),
        ([since], ["p2"]),
        ([since], ["p3"]),  # the next run, from where the last one stopped
        (["2026-01-01T00:00:20Z"], None),
    ]
    assert (await source.state()).cursor == {"value": "2026-01-01T00:00:70Z"}


async def test_a_baseline_cut_at_max_pages_goes_on_as_a_baseline(make_source: MakeSource) -> None:
    source = await make_source(items="data", link_header=True, max_pages=1)
    more = Reply.json({"data": [item("a")]}, headers={"Link": '</items?page=2>; rel="next"'})

    await source.run(more, listing(item("b")))
    await source.run()
    await source.run(listing(item("c"), item("a"), item("b")))

    assert await source.fired() == ["c"]
    assert [q.get("page") for q in source.queries()] == [None, ["2"], None]


async def test_a_next_page_on_another_origin_is_refused(make_source: MakeSource) -> None:
    source = await make_source(items="data", next_page="next")

    await source.run(listing(item("a"), next="https://elsewhere.example/items?page=2"))

    state = await source.state()
    assert state.cursor is None
    assert "another origin" in (state.last_error or "")


async def test_ids_that_differ_only_in_case_are_two_items(make_source: MakeSource) -> None:
    source = await make_source(items="data")
    await source.run(listing())

    await source.run(listing(item("abc"), item("ABC"), item("Abc ")))

    hashed = "sha256:" + hashlib.sha256(b"Abc ").hexdigest()  # MariaDB ignores trailing spaces
    assert sorted(await source.fired()) == sorted(["abc", "ABC", hashed])


async def test_an_item_without_an_id_fails_the_run_and_says_where(make_source: MakeSource) -> None:
    source = await make_source(items="data", item_id="key")

    await source.run(listing({"key": "k1"}, {"other": 1}))

    state = await source.state()
    assert state.cursor is None
    assert "item 1 of the run has no id at `key`" in (state.last_error or "")
    async with source.container.unit_of_work(source.tenant_id) as uow:
        count = await uow.session.scalar(
            select(func.count())
            .select_from(SeenItem)
            .where(SeenItem.subscription_id == source.subscription.id)
        )
    assert count == 0

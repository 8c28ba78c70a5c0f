"""A source that keeps subscriptions of its own (Microsoft Graph), against a local server that
speaks Graph's wire format (``tests/support/graph.py``): made on enable after Graph's
validation of the hook, renewed at half its life, made again and resynced when a renewal
finds it gone (nothing in the gap missed, nothing fired twice), lifecycle notifications
acted on, deleted on disable, and a renewal that keeps failing shown as ``failing``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from casedesk.bootstrap import Container, job_handlers
from casedesk.kit.clock import utcnow
from casedesk.platform import instant
from casedesk.platform.instant import CREATE, DELETE, PROCESS, RENEW, RESYNC
from casedesk.platform.lifecycle import FAILING_AFTER
from casedesk.store.models import Execution, InboxDelivery, OutboxEvent, ScheduledJob
from tests.conftest import Tenants
from tests.support.graph import GRAPH_MAIL, LIFETIME_MINUTES, GraphMail, graph_server
from tests.support.instant import (
    Hook,
    add_connection,
    add_connector,
    disable,
    enable,
    pending_jobs,
    run_jobs,
    subscription_of,
)


@dataclass
class Mailbox:
    graph: GraphMail
    hook: Hook
    container: Container


@pytest.fixture
async def mailbox(
    client: httpx.AsyncClient, container: Container, tenants: Tenants
) -> AsyncIterator[Mailbox]:
    """An enabled workflow on Graph mail, with three messages in the inbox before it."""
    async with graph_server(caller=client) as graph:
        for subject in ("old 1", "old 2", "old 3"):
            graph.add_message(subject)
        tenant = await tenants.create()
        await add_connector(container, tenant.id, GRAPH_MAIL)
        connection = await add_connection(
            container,
            tenant.id,
            "graph-mail",
            settings={"base_url": graph.base_url},
            secrets={"token": "graph-access-token"},
        )
        hook = await enable(
            container,
            tenant.id,
            connector="graph-mail",
            trigger="new_mail",
            connection_id=connection,
        )
        yield Mailbox(graph, hook, container)


async def _fired(mailbox: Mailbox) -> list[str]:
    async with mailbox.container.unit_of_work(mailbox.hook.tenant_id) as uow:
        found = await uow.session.scalars(
            select(Execution.source_id).where(
                Execution.subscription_id == mailbox.hook.subscription_id
            )
        )
        return sorted(str(source_id) for source_id in found.all())


async def _deliveries(mailbox: Mailbox) -> list[InboxDelivery]:
    async with mailbox.container.unit_of_work(mailbox.hook.tenant_id) as uow:
        found = await uow.session.scalars(select(InboxDelivery).order_by(InboxDelivery.received_at))
        return list(found.all())


async def _run(mailbox: Mailbox, *kinds: str, rounds: int = 10) -> int:
    return await run_jobs(mailbox.container, mailbox.hook.tenant_id, *kinds, rounds=rounds)


async def _created(mailbox: Mailbox) -> None:
    assert await _run(mailbox, CREATE) == 1


async def test_enabling_makes_the_subscription_after_graph_validates_the_hook(
    mailbox: Mailbox,
) -> None:
    graph, hook = mailbox.graph, mailbox.hook
    started = utcnow()
    await _created(mailbox)
    (request,) = graph.requests("POST", "/v1.0/subscriptions")
    own = instant.own_secrets(await subscription_of(mailbox.container, hook), mailbox.container.box)
    assert request.body["notificationUrl"] == f"http://127.0.0.1:8000{hook.path}"
    assert request.body["clientState"] == own["client_state"]
    asked = request.body["expirationDateTime"]
    assert asked.endswith("Z")
    # Graph checked both URLs with a validationToken and got each back exactly, as text.
    assert [answer.status_code for answer in graph.validation_answers] == [200, 200]
    assert await _deliveries(mailbox) == []

    subscription = await subscription_of(mailbox.container, hook)
    made = graph.only_subscription()
    assert subscription.external_id == made.id
    assert subscription.external_expires_at is not None
    lifetime = subscription.external_expires_at - started
    assert (
        timedelta(minutes=LIFETIME_MINUTES - 1) < lifetime < timedelta(minutes=LIFETIME_MINUTES + 1)
    )
    (renewal,) = await pending_jobs(mailbox.container, hook.tenant_id, [RENEW])
    half = started + lifetime / 2
    assert abs(renewal.due_at - half) < timedelta(minutes=1)
    # The baseline: what was in the inbox is seen, through every page, and nothing fires.
    assert len(graph.requests("GET", "/v1.0/me/mailFolders/inbox/messages/delta")) == 2
    assert await _fired(mailbox) == []
    assert subscription.cursor is not None
    assert "$deltatoken=3" in subscription.cursor["value"]


async def test_a_change_notification_is_acknowledged_with_202_and_fires_once(
    mailbox: Mailbox,
) -> None:
    await _created(mailbox)
    graph = mailbox.graph
    message = graph.add_message("Printer on fire")
    first = await graph.notify(graph.only_subscription(), message)
    again = await graph.notify(graph.only_subscription(), message)  # Graph retries on a slow ack
    assert (first.status_code, again.status_code) == (202, 202)
    assert await _run(mailbox, PROCESS) == 1
    assert await _fired(mailbox) == [message["id"]]


async def test_a_wrong_client_state_is_401_and_stores_nothing(mailbox: Mailbox) -> None:
    await _created(mailbox)
    graph = mailbox.graph
    forged = graph.only_subscription()
    forged.client_state = "guessed"
    answer = await graph.notify(forged, graph.add_message("phish"))
    assert answer.status_code == 401
    assert "client state does not match" in answer.json()["detail"]
    assert await _deliveries(mailbox) == []


async def test_a_renewal_extends_the_subscription_and_plans_the_next(mailbox: Mailbox) -> None:
    await _created(mailbox)
    graph = mailbox.graph
    before = await subscription_of(mailbox.container, mailbox.hook)
    assert await _run(mailbox, RENEW, rounds=1) == 1
    (patch,) = graph.requests("PATCH", "/v1.0/subscriptions/")
    assert patch.path == f"/v1.0/subscriptions/{before.external_id}"
    assert set(patch.body) == {"expirationDateTime"}
    after = await subscription_of(mailbox.container, mailbox.hook)
    assert after.external_id == before.external_id
    assert before.external_expires_at is not None
    assert after.external_expires_at is not None
    assert after.external_expires_at >= before.external_expires_at
    (following,) = await pending_jobs(mailbox.container, mailbox.hook.tenant_id, [RENEW])
    assert following.payload["expires"] == int(after.external_expires_at.timestamp())


async def test_a_renewal_answered_404_recreates_and_resyncs_missing_nothing_and_nothing_twice(
    mailbox: Mailbox,
) -> None:
    await _created(mailbox)
    graph = mailbox.graph
    delivered = graph.add_message("delivered by the hook")
    assert (await graph.notify(graph.only_subscription(), delivered)).status_code == 202
    await _run(mailbox, PROCESS)
    lost = graph.only_subscription().id
    graph.forget(lost)  # it expired at Graph: what arrives now is never notified
    gap = [graph.add_message("in the gap 1"), graph.add_message("in the gap 2")]

    assert await _run(mailbox, RENEW, rounds=1) == 1
    assert [p.path for p in graph.requests("PATCH")] == [f"/v1.0/subscriptions/{lost}"]
    assert len(graph.requests("POST", "/v1.0/subscriptions")) == 2
    remade = graph.only_subscription()
    subscription = await subscription_of(mailbox.container, mailbox.hook)
    assert subscription.external_id == remade.id != lost
    assert len(graph.validation_answers) == 4  # the new subscription's hook validated again
    expected = sorted([delivered["id"], *(message["id"] for message in gap)])
    assert await _fired(mailbox) == expected
    # The delta went on from the baseline's cursor, so the old mail never fired.
    resync = graph.requests("GET", "/v1.0/me/mailFolders/inbox/messages/delta")[-2:]
    assert "$deltatoken=3" in resync[0].query
    later = graph.add_message("after the recreation")
    assert (await graph.notify(remade, later)).status_code == 202
    await _run(mailbox, PROCESS)
    assert await _fired(mailbox) == sorted([*expected, later["id"]])
    (renewal,) = await pending_jobs(mailbox.container, mailbox.hook.tenant_id, [RENEW])
    assert renewal.payload["external_id"] == remade.id


async def test_lifecycle_notifications_renew_recreate_and_resync(mailbox: Mailbox) -> None:
    await _created(mailbox)
    graph = mailbox.graph
    first = graph.only_subscription()

    assert (await graph.lifecycle(first, "reauthorizationRequired")).status_code == 202
    await _run(mailbox, PROCESS)
    (renewal,) = await pending_jobs(mailbox.container, mailbox.hook.tenant_id, [RENEW])
    assert renewal.due_at <= utcnow()
    await _run(mailbox, RENEW, rounds=1)
    assert [p.path for p in graph.requests("PATCH")] == [f"/v1.0/subscriptions/{first.id}"]

    missed = graph.add_message("never notified")
    assert (await graph.lifecycle(first, "missed")).status_code == 202
    await _run(mailbox, PROCESS)
    assert await _run(mailbox, RESYNC) == 1
    assert await _fired(mailbox) == [missed["id"]]

    graph.forget(first.id)
    removed_gap = graph.add_message("while it was removed")
    assert (await graph.lifecycle(first, "subscriptionRemoved")).status_code == 202
    await _run(mailbox, PROCESS)
    assert await _run(mailbox, CREATE) == 1
    second = graph.only_subscription()
    assert second.id != first.id
    assert (await subscription_of(mailbox.container, mailbox.hook)).external_id == second.id
    assert await _fired(mailbox) == sorted([missed["id"], removed_gap["id"]])
    # A notification repeated by Graph changes nothing more.
    assert (await graph.lifecycle(first, "subscriptionRemoved")).status_code == 202
    await _run(mailbox, PROCESS)
    await _run(mailbox, CREATE)
    assert graph.only_subscription().id == second.id
    assert {d.status for d in await _deliveries(mailbox)} == {"dropped"}


async def test_disabling_deletes_the_graph_subscription(
    mailbox: Mailbox, client: httpx.AsyncClient
) -> None:
    await _created(mailbox)
    graph = mailbox.graph
    made = graph.only_subscription()
    await disable(mailbox.container, mailbox.hook)
    assert await _run(mailbox, DELETE) == 1
    assert [d.path for d in graph.requests("DELETE")] == [f"/v1.0/subscriptions/{made.id}"]
    assert graph.subscriptions == {}
    subscription = await subscription_of(mailbox.container, mailbox.hook)
    assert (subscription.external_id, subscription.external_expires_at) == (None, None)
    # The renewal planned before does nothing now: its subscription is gone.
    await _run(mailbox, RENEW)
    assert graph.requests("PATCH") == []
    assert (await graph.notify(made, graph.add_message("late"))).status_code == 410


async def test_a_renewal_that_keeps_failing_marks_the_subscription_failing_with_an_event(
    mailbox: Mailbox,
) -> None:
    await _created(mailbox)
    graph = mailbox.graph
    graph.renewals = [503] * FAILING_AFTER
    for failures in range(1, FAILING_AFTER + 1):
        assert await _run(mailbox, RENEW, rounds=1) == 1
        subscription = await subscription_of(mailbox.container, mailbox.hook)
        assert subscription.consecutive_failures == failures
        assert subscription.last_error is not None
        assert "503" in subscription.last_error
        (retry,) = await pending_jobs(mailbox.container, mailbox.hook.tenant_id, [RENEW])
        assert retry.due_at > utcnow()
    assert subscription.status == "failing"
    async with mailbox.container.unit_of_work(mailbox.hook.tenant_id) as uow:
        events = list(
            (
                await uow.session.scalars(
                    select(OutboxEvent).where(OutboxEvent.type == "subscription.failing")
                )
            ).all()
        )
    (event,) = events
    assert event.subject_id == mailbox.hook.subscription_id
    assert "503" in event.data["error"]
    assert event.data["consecutive_failures"] == FAILING_AFTER
    # It keeps trying, and the first renewal that works makes it active again.
    assert await _run(mailbox, RENEW, rounds=1) == 1
    recovered = await subscription_of(mailbox.container, mailbox.hook)
    assert (recovered.status, recovered.consecutive_failures, recovered.last_error) == (
        "active",
        0,
        None,
    )


async def test_a_job_of_a_lifecycle_run_twice_does_its_work_once(mailbox: Mailbox) -> None:
    await _created(mailbox)
    async with mailbox.container.unit_of_work(mailbox.hook.tenant_id) as uow:
        create = await uow.session.scalar(select(ScheduledJob).where(ScheduledJob.kind == CREATE))
    assert create is not None
    await job_handlers(mailbox.container)[CREATE](create)  # a second runner of the done job
    assert len(mailbox.graph.requests("POST", "/v1.0/subscriptions")) == 1
    assert len(await pending_jobs(mailbox.container, mailbox.hook.tenant_id, [RENEW])) == 1


async def test_a_subscription_stopped_while_graph_makes_its_subscription_leaves_none_behind(
    mailbox: Mailbox,
) -> None:
    graph = mailbox.graph

    async def stop_meanwhile() -> None:
        await disable(mailbox.container, mailbox.hook)

    graph.while_creating = stop_meanwhile
    await _created(mailbox)
    made = graph.only_subscription()
    assert (await subscription_of(mailbox.container, mailbox.hook)).external_id is None
    assert await _run(mailbox, DELETE) == 1
    assert [d.path for d in graph.requests("DELETE")] == [f"/v1.0/subscriptions/{made.id}"]
    assert graph.subscriptions == {}
    assert await pending_jobs(mailbox.container, mailbox.hook.tenant_id, [RENEW]) == []

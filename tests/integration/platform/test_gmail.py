"""The Gmail connector's triggers, end to end against a local Gmail (``tests/support/gmail.py``)
authorized through a local OAuth server: the watch made on enable and made again every day
(and when it lapsed), Pub/Sub pushes that only signal and a history.list resync that reads
what was added, page by page; a duplicated push, a lost one, a lapsed watch, a history id
Gmail no longer keeps (404: a full sync through messages.list) and 429s each end with every
message exactly once; a token Gmail refuses (401) fails the resync until a refreshed one
catches up; a push without data is acted on by nobody; the polling trigger; the access token
refreshed; users.stop on disable.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from casedesk.bootstrap import Container
from casedesk.kit.clock import utcnow
from casedesk.platform import instant
from casedesk.platform.instant import DELETE, PROCESS, RENEW, RESYNC
from casedesk.store.models import InboxDelivery
from tests.support.cases import Desk
from tests.support.connections import REDIRECT_URI
from tests.support.gmail import TOPIC, GmailDesk, GmailMailbox, gmail_server, mail
from tests.support.instant import Hook, disable, pending_jobs
from tests.support.oauth_server import oauth_server


@pytest.fixture
async def mailbox(desk: Desk) -> AsyncIterator[GmailMailbox]:
    """A mailbox with two messages in it before casedesk is connected."""
    async with oauth_server(REDIRECT_URI) as oauth, gmail_server(desk.http, oauth) as gmail:
        await gmail.deliver(mail("Old mail 1"), push=False)
        await gmail.deliver(mail("Old mail 2"), push=False)
        yield gmail


@pytest.fixture
async def gmail(desk: Desk, container: Container, mailbox: GmailMailbox) -> GmailDesk:
    connected = GmailDesk(desk, container, mailbox)
    await connected.connect()
    return connected


async def _delivered(gmail: GmailDesk, count: int) -> list[str]:
    """``count`` new mails, without a push; their Gmail ids."""
    ids = []
    for number in range(count):
        stored = await gmail.gmail.deliver(mail(f"Question {number}"), push=False)
        ids.append(stored.id)
    return ids


async def _titles(gmail: GmailDesk) -> list[str]:
    return sorted(case["title"] for case in await gmail.cases())


# --- the watch --------------------------------------------------------------------------


async def test_enabling_makes_the_watch_takes_the_baseline_and_renews_daily(
    gmail: GmailDesk,
) -> None:
    mailbox = gmail.gmail
    started = utcnow()
    (watch,) = mailbox.calls_to("watch")
    assert watch.body == {
        "topicName": TOPIC,
        "labelIds": ["INBOX"],
        "labelFilterBehavior": "include",
    }
    subscription = await gmail.subscription()
    # Gmail's expiration is Unix milliseconds, 7 days on.
    assert subscription.external_expires_at is not None
    lifetime = subscription.external_expires_at - started
    assert timedelta(days=7) - timedelta(minutes=1) < lifetime < timedelta(days=7, minutes=1)
    # The baseline: the current historyId, and nothing of what was there fires.
    assert subscription.cursor == {"value": str(mailbox.history_id)}
    assert mailbox.calls_to("history") == []
    assert await gmail.fired() == []
    # Renewed after a day, not at half its 7 days.
    (renewal,) = await pending_jobs(gmail.container, gmail.desk.tenant.id, [RENEW])
    assert abs(renewal.due_at - (started + timedelta(days=1))) < timedelta(minutes=1)
    assert await gmail.run(RENEW, rounds=1) == 1
    assert len(mailbox.calls_to("watch")) == 2
    (again,) = await pending_jobs(gmail.container, gmail.desk.tenant.id, [RENEW])
    assert again.due_at > renewal.due_at
    assert abs(again.due_at - (utcnow() + timedelta(days=1))) < timedelta(minutes=1)


async def test_a_push_is_acknowledged_at_once_and_starts_a_resync_from_the_stored_history_id(
    gmail: GmailDesk,
) -> None:
    mailbox = gmail.gmail
    start = (await gmail.subscription()).cursor
    stored = await mailbox.deliver(mail("Printer on fire"))
    (pushed,) = mailbox.pushes
    assert pushed.status == 200
    await gmail.work()
    (history,) = mailbox.calls_to("history")
    assert start is not None
    assert history.query["startHistoryId"] == start["value"]
    assert history.query["historyTypes"] == "messageAdded"
    assert await gmail.fired() == [stored.id]
    assert (await gmail.subscription()).cursor == {"value": str(mailbox.history_id)}
    assert await _titles(gmail) == ["Printer on fire"]


async def test_a_push_without_data_is_acknowledged_and_acted_on_by_nobody(
    gmail: GmailDesk,
) -> None:
    mailbox = gmail.gmail
    await mailbox.deliver(mail("Printer on fire"), push=False)
    body = {"message": {"messageId": "1", "attributes": {}}, "subscription": "projects/p/s"}
    answer = await mailbox.caller.post(mailbox.push_url, json=body)
    assert answer.status_code == 200
    await gmail.work()
    assert mailbox.calls_to("history") == []
    assert await gmail.fired() == []


async def test_a_duplicated_push_makes_one_case(gmail: GmailDesk) -> None:
    mailbox = gmail.gmail
    await mailbox.deliver(mail("Printer on fire"))
    (first,) = mailbox.pushes
    again = await mailbox.repush(first)  # Pub/Sub delivers at least once
    assert again.status == 200
    await mailbox.push()  # and a second notification for the same change
    await gmail.work()
    async with gmail.container.unit_of_work(gmail.desk.tenant.id) as uow:
        stored = list((await uow.session.scalars(select(InboxDelivery))).all())
    assert len(stored) == 2  # the redelivery was dropped by its messageId
    assert await gmail.outcomes() == ["opened"]
    assert await _titles(gmail) == ["Printer on fire"]


async def test_a_lost_push_is_caught_up_by_the_next_one_through_every_page(
    gmail: GmailDesk,
) -> None:
    mailbox = gmail.gmail
    mailbox.page_size = 2
    mailbox.lose_pushes = 5
    lost = []
    for number in range(5):
        lost.append((await mailbox.deliver(mail(f"Lost {number}"))).id)
    assert mailbox.pushes == []
    await gmail.work()
    assert await gmail.fired() == []
    last = await mailbox.deliver(mail("Pushed"))
    await gmail.work()
    assert await gmail.fired() == [*lost, last.id]
    pages = [call.query.get("pageToken") for call in mailbox.calls_to("history")]
    assert pages == [None, "2", "4"]
    assert len(await gmail.cases()) == 6


async def test_a_lapsed_watch_is_made_again_and_what_came_meanwhile_caught_up(
    gmail: GmailDesk,
) -> None:
    mailbox = gmail.gmail
    mailbox.expire_watch()
    meanwhile = await mailbox.deliver(mail("Sent while nobody watched"))
    assert mailbox.pushes == []
    assert await gmail.run(RENEW, rounds=1) == 1  # the daily re-watch
    assert len(mailbox.calls_to("watch")) == 2
    assert mailbox.watch is not None
    await gmail.work()
    assert await gmail.fired() == [meanwhile.id]
    after = await mailbox.deliver(mail("Sent after the re-watch"))
    assert mailbox.pushes[-1].status == 200
    await gmail.work()
    assert await gmail.fired() == [meanwhile.id, after.id]
    assert await _titles(gmail) == ["Sent after the re-watch", "Sent while nobody watched"]


async def test_a_history_id_gmail_no_longer_keeps_is_a_full_sync_without_duplicates(
    gmail: GmailDesk,
) -> None:
    mailbox = gmail.gmail
    imported = await mailbox.deliver(mail("Imported before"))
    await gmail.work()
    assert await gmail.fired() == [imported.id]
    mailbox.page_size = 2
    mailbox.expire_history()
    later = await mailbox.deliver(mail("After the history expired"))
    await gmail.work()
    (refused,) = mailbox.calls_to("history")[1:]
    assert refused.query["startHistoryId"] == str(imported.history_id)
    # A fresh historyId from the profile first, then the newest messages, page by page.
    assert [call.query.get("pageToken") for call in mailbox.calls_to("messages.list")] == [
        None,
        "2",
    ]
    fired = await gmail.fired()
    assert sorted(fired) == sorted(mailbox.messages)
    assert len(fired) == len(set(fired)) == 4
    assert (await gmail.subscription()).cursor == {"value": str(later.history_id)}
    assert await _titles(gmail) == sorted(
        ["Imported before", "After the history expired", "Old mail 1", "Old mail 2"]
    )
    # From the fresh historyId on, the history serves again.
    again = await mailbox.deliver(mail("And one more"))
    await gmail.work()
    assert (await gmail.fired())[-1] == again.id
    assert len(await gmail.cases()) == 5


async def test_rate_limited_calls_wait_for_retry_after_and_every_mail_comes_once(
    gmail: GmailDesk,
) -> None:
    mailbox = gmail.gmail
    mailbox.rate_limit("history", 1)
    mailbox.rate_limit("messages.get", 1)
    started = time.monotonic()
    stored = await mailbox.deliver(mail("Printer on fire"))
    await gmail.work()
    assert time.monotonic() - started >= 2
    assert len(mailbox.calls_to("history")) == 2
    assert len(mailbox.calls_to("messages.get")) == 2
    assert await gmail.fired() == [stored.id]
    assert await gmail.outcomes() == ["opened"]


async def test_the_access_token_is_refreshed_and_the_mailbox_read_with_the_new_one(
    desk: Desk, container: Container, mailbox: GmailMailbox
) -> None:
    mailbox.oauth.access_lifetime = 30  # inside casedesk's margin: refreshed before each use
    gmail = GmailDesk(desk, container, mailbox)
    await gmail.connect()
    await mailbox.deliver(mail("Printer on fire"))
    await gmail.work()
    assert "refresh_token" in mailbox.oauth.grant_types
    used = [call.headers["authorization"] for call in mailbox.calls]
    assert len(set(used)) > 1
    assert used[-1] == f"Bearer {mailbox.oauth.issued_access_tokens[-1]}"
    assert await _titles(gmail) == ["Printer on fire"]


async def test_a_token_gmail_refuses_fails_the_resync_until_a_new_one_catches_up(
    gmail: GmailDesk,
) -> None:
    mailbox = gmail.gmail
    mailbox.reject_tokens()  # revoked at Google before it expired
    stored = await mailbox.deliver(mail("Printer on fire"))
    assert await gmail.run(PROCESS, rounds=1) == 1
    assert await gmail.run(RESYNC, rounds=1) == 1
    subscription = await gmail.subscription()
    assert subscription.consecutive_failures == 1
    assert "answered 401" in (subscription.last_error or "")
    assert await gmail.fired() == []
    async with gmail.container.unit_of_work(gmail.desk.tenant.id) as uow:
        await uow.begin_write()
        connection = await uow.connections.get(uuid.UUID(gmail.connection_id))
        connection.token_expires_at = utcnow() - timedelta(seconds=1)
        await uow.commit()
    await gmail.work()  # the resync's retry, with a refreshed token
    assert mailbox.oauth.grant_types[-1] == "refresh_token"
    assert await gmail.fired() == [stored.id]
    assert (await gmail.subscription()).consecutive_failures == 0
    assert await _titles(gmail) == ["Printer on fire"]


async def test_disabling_stops_the_watch(gmail: GmailDesk) -> None:
    subscription = await gmail.subscription()
    await disable(
        gmail.container, Hook(subscription.id, subscription.tenant_id, gmail.gmail.push_url)
    )
    assert await gmail.run(DELETE) == 1
    assert gmail.gmail.stops == 1
    assert gmail.gmail.watch is None


# --- polling --------------------------------------------------------------------------


async def test_the_polling_trigger_reads_the_history_and_full_syncs_when_it_is_too_old(
    desk: Desk, container: Container, mailbox: GmailMailbox
) -> None:
    gmail = GmailDesk(desk, container, mailbox)
    await gmail.connect("new_mail_polled")
    await gmail.poll()  # the baseline: the current historyId from the profile
    assert [call.name for call in mailbox.calls] == ["profile"]
    assert await gmail.fired() == []
    mailbox.page_size = 2
    first = await _delivered(gmail, 3)
    await gmail.poll()
    assert await gmail.fired() == first
    assert [call.query.get("pageToken") for call in mailbox.calls_to("history")] == [None, "2"]
    await gmail.poll()  # nothing new
    assert await gmail.fired() == first
    mailbox.expire_history()
    later = await _delivered(gmail, 1)
    await gmail.poll()
    fired = await gmail.fired()
    assert sorted(fired) == sorted(mailbox.messages)  # the old mail too, each once
    assert len(fired) == len(set(fired)) == 6
    assert fired[:3] == first
    assert later[0] in fired
    assert len(await gmail.cases()) == 6
    subscription = await gmail.subscription()
    assert subscription.cursor == {"value": str(mailbox.history_id)}


async def test_a_resync_job_without_a_push_catches_up(gmail: GmailDesk) -> None:
    """What lifecycle.resync does when asked (a failed push, an operator's nudge)."""
    stored = await gmail.gmail.deliver(mail("Printer on fire"), push=False)
    async with gmail.container.unit_of_work(gmail.desk.tenant.id) as uow:
        await uow.begin_write()
        subscription = await uow.subscriptions.get(uuid.UUID(gmail.subscription_id))
        await instant.plan(uow, RESYNC, subscription, utcnow(), tag="nudge")
        await uow.commit()
    await gmail.work()
    assert await gmail.fired() == [stored.id]
    assert len(gmail.gmail.calls_to("watch")) == 1  # the fixture's, and no other

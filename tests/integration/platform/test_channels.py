"""The threading rules every channel shares, and agents' replies going back out.

A tenant's own connector stands for a channel: its items are already messages (its
``channel.message`` mapping hands the item on as it is), and its reply action POSTs the reply
to a local server. What is tested is the ``receive_message`` step and the ``channel.deliver``
job: a root opens one case; a reply by thread id, by ``In-Reply-To`` or by a ``[#N]`` token
is one comment on it; repeats, casedesk's own messages and automatic mail open nothing; a
closed case is reopened or followed up; a public comment goes back to the requester with the
threading fields, and its delivery status shows on the comment.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from casedesk.activities.channel_delivery import DELIVER, deliver_key
from casedesk.bootstrap import Container
from casedesk.kit.clock import utcnow
from casedesk.platform.intake import RUN, TriggerItem
from casedesk.store.models import ChannelMessageRecord, ScheduledJob
from casedesk.worker.search_index import SearchIndexer
from tests.support.cases import Desk
from tests.support.channels import DeskSide
from tests.support.delivery import Settle, delivering_to
from tests.support.http_server import LocalHTTPServer, Reply, local_http_server
from tests.support.instant import run_due_now, run_jobs
from tests.support.workflows import (
    add_connection,
    add_connector,
    execution,
    fire_items,
    published,
)

INBOX: dict[str, Any] = {
    "id": "inbox",
    "name": "A mailbox whose items are messages already",
    "base_url": "{{ connection.base_url }}",
    "connection": {
        "settings": {
            "type": "object",
            "required": ["base_url"],
            "properties": {"base_url": {"type": "string"}},
        }
    },
    "actions": {
        "send": {
            "request": {"method": "POST", "path": "/send", "json": "{{ input }}"},
            "output": "sent",
        }
    },
    "triggers": {
        "message": {"kind": "instant", "instant": {"events": "[@]", "event_id": "body.id"}}
    },
    "channel": {"kind": "mail", "message": "{{ entity }}", "reply": {"action": "send"}},
}


@pytest.fixture
async def server() -> AsyncIterator[LocalHTTPServer]:
    async with local_http_server() as running:
        yield running


class Channel(DeskSide):
    def __init__(self, desk: Desk, container: Container, subscription: str) -> None:
        super().__init__(desk, container)
        self.subscription = subscription

    async def deliver(self, message: dict[str, Any], *, source_id: str | None = None) -> Any:
        """The message through the workflow; the receive step's output."""
        item = TriggerItem(source_id or f"{message['id']}:{uuid.uuid4().hex[:6]}", message)
        (made,) = await fire_items(self.container, self.desk.tenant.id, self.subscription, item)
        await run_jobs(self.container, self.desk.tenant.id, RUN)
        found = await execution(self.desk, made.id)
        assert found["status"] == "succeeded", found
        (step,) = [s for s in found["steps"] if s["kind"] == "receive_message"]
        return step["output"]


async def _channel(
    desk: Desk, container: Container, server: LocalHTTPServer, **step: Any
) -> Channel:
    await add_connector(container, desk.tenant.id, INBOX)
    connection = await add_connection(container, desk.tenant.id, "inbox", {"base_url": server.url})
    workflow = await published(
        desk,
        {
            "code": "mail-in",
            "name": "Support mail",
            "trigger": {"connector": "inbox", "trigger": "message", "connection_id": connection},
            "steps": [
                {
                    "name": "thread",
                    "kind": "receive_message",
                    "template": "question",
                    "queue": "support",
                    "priority": "high",
                    "tags": ["mail"],
                }
                | step
            ],
        },
    )
    return Channel(desk, container, workflow["subscription"]["id"])


def _mail(id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": id,
        "thread_id": f"T-{id}",
        "subject": "Printer on fire",
        "text": "It smokes.\nPlease help.",
        "sender": {"address": "Ann@Example.com", "name": "Ann Smith"},
        "message_id": f"<{id}@mail.example.com>",
    } | fields


@pytest.fixture
async def channel(desk: Desk, container: Container, server: LocalHTTPServer) -> Channel:
    return await _channel(desk, container, server)


async def test_a_new_message_opens_one_case_with_its_subject_body_and_sender(
    channel: Channel,
) -> None:
    output = await channel.deliver(_mail("m1"))
    assert output["outcome"] == "opened"
    (case,) = await channel.cases()
    assert case["id"] == output["case_id"]
    assert case["number"] == output["number"]
    assert case["title"] == "Printer on fire"
    assert case["priority"] == "high"
    assert case["tags"] == ["mail"]
    found = await channel.case(case["id"])
    assert found["customer"]["email"] == "ann@example.com"
    assert found["customer"]["name"] == "Ann Smith"
    assert found["description"] == "It smokes.\nPlease help."
    assert found["channel"] == "inbox"
    # The same message again (a provider's repeat under another source id) is no second case.
    again = await channel.deliver(_mail("m1"))
    assert again["outcome"] == "duplicate"
    assert again["case_id"] == case["id"]
    assert len(await channel.cases()) == 1


async def test_a_reply_in_the_thread_is_one_comment_with_its_channel_ids(
    channel: Channel,
) -> None:
    opened = await channel.deliver(_mail("m1"))
    reply = _mail("m2", thread_id="T-m1", subject="Re: Printer on fire", text="Still smoking")
    output = await channel.deliver(reply)
    assert output["outcome"] == "commented"
    assert output["case_id"] == opened["case_id"]
    again = await channel.deliver(reply)
    assert again["outcome"] == "duplicate"
    (comment,) = await channel.comments(opened["case_id"])
    assert comment["id"] == output["comment_id"]
    assert comment["body"] == "Still smoking"
    assert comment["public"] is True
    assert comment["author_type"] == "customer"
    assert (comment["channel"], comment["external_id"], comment["thread_id"]) == (
        "inbox",
        "m2",
        "T-m1",
    )
    assert comment["delivery"] is None  # what came in is never sent back
    assert len(await channel.cases()) == 1


async def test_a_reply_threads_by_its_message_ids_when_the_thread_id_is_new(
    channel: Channel,
) -> None:
    opened = await channel.deliver(_mail("m1"))
    by_references = _mail(
        "m2",
        thread_id="T-other-mailbox",
        in_reply_to="<unknown@elsewhere>",
        references="<m1@mail.example.com> <unknown@elsewhere>",
    )
    output = await channel.deliver(by_references)
    assert output["outcome"] == "commented"
    assert output["case_id"] == opened["case_id"]
    # Now the new thread id is known too: its next message threads by it.
    follow = await channel.deliver(_mail("m3", thread_id="T-other-mailbox", message_id=None))
    assert follow["case_id"] == opened["case_id"]


async def test_a_case_number_token_threads_mail_whose_headers_were_lost(
    channel: Channel,
) -> None:
    opened = await channel.deliver(_mail("m1"))
    number = opened["number"]
    lost = _mail("m2", thread_id=None, message_id=None, subject=f"RE: Printer [#{number}]")
    output = await channel.deliver(lost)
    assert output["outcome"] == "commented"
    assert output["case_id"] == opened["case_id"]
    # Somebody else cannot write into Ann's case by typing its number: a case of their own.
    stranger = _mail(
        "m3",
        thread_id=None,
        message_id=None,
        subject=f"About [#{number}]",
        sender={"address": "mallory@example.net"},
    )
    other = await channel.deliver(stranger)
    assert other["outcome"] == "opened"
    assert other["case_id"] != opened["case_id"]


async def test_automatic_mail_opens_nothing_and_in_a_thread_is_an_internal_note(
    channel: Channel,
) -> None:
    out_of_office = _mail("ooo", subject="Automatic reply: away", automatic=True)
    assert (await channel.deliver(out_of_office))["outcome"] == "automatic"
    assert await channel.cases() == []
    opened = await channel.deliver(_mail("m1"))
    bounce = _mail("bounce", thread_id="T-m1", automatic=True, text="Delivery failed")
    output = await channel.deliver(bounce)
    assert output["outcome"] == "commented"
    (note,) = await channel.comments(opened["case_id"])
    assert note["public"] is False
    assert note["author_type"] == "system"
    assert await channel.send_replies() == 0  # nobody answers a robot


async def test_casedesks_own_messages_never_come_back_as_comments(
    channel: Channel, server: LocalHTTPServer
) -> None:
    opened = await channel.deliver(_mail("m1"))
    assert (await channel.deliver(_mail("bot", thread_id="T-m1", own=True)))["outcome"] == "own"
    server.script("/send", Reply.json({"sent": {"id": "S-1"}}))
    await channel.reply(opened["case_id"], "We are on it.")
    await channel.send_replies()
    sent = orjson.loads(server.requests_to("/send")[0].body)
    # The provider reports the sent message like any other, by its id or its Message-ID.
    echo_by_id = _mail("S-1", thread_id="T-m1")
    assert (await channel.deliver(echo_by_id))["outcome"] == "own"
    echo = _mail("S-1-copy", thread_id="T-m1", message_id=f"<{sent['message_id']}>")
    assert (await channel.deliver(echo))["outcome"] == "own"
    assert len(await channel.comments(opened["case_id"])) == 1  # the agent's reply only


async def test_an_agents_public_comment_goes_back_to_the_requester_in_the_thread(
    channel: Channel, server: LocalHTTPServer
) -> None:
    opened = await channel.deliver(_mail("m1", reply={"mailbox": "support"}))
    cc = _mail(
        "m2",
        thread_id="T-m1",
        subject="Re: Printer on fire",
        sender={"address": "bob@example.com", "name": "Bob"},
        in_reply_to="<m1@mail.example.com>",
        references="<m1@mail.example.com>",
        reply={"mailbox": "support", "answer": "m2"},
    )
    await channel.deliver(cc)
    server.script("/send", Reply.json({"sent": {"id": "S-9"}}))
    comment = await channel.reply(opened["case_id"], "We are on it.\n\nA technician is coming.")
    assert comment["delivery"]["status"] == "pending"
    note = await channel.reply(opened["case_id"], "Internal: call the vendor", public=False)
    assert note["delivery"] is None
    assert await channel.send_replies() == 1
    (request,) = server.requests_to("/send")
    sent = orjson.loads(request.body)
    number = opened["number"]
    assert sent["to"] == [{"address": "ann@example.com", "name": "Ann Smith", "id": None}]
    assert sent["subject"] == f"Re: Printer on fire [#{number}]"
    assert sent["thread_id"] == "T-m1"
    assert sent["in_reply_to"] == "m2@mail.example.com"
    assert sent["references"] == ["m1@mail.example.com", "m2@mail.example.com"]
    assert sent["reply"] == {"mailbox": "support", "answer": "m2"}
    assert sent["message_id"].startswith("casedesk.")
    assert "@" in sent["message_id"]
    assert sent["text"] == "We are on it.\n\nA technician is coming."
    assert sent["html"] == "<p>We are on it.</p><p>A technician is coming.</p>"
    assert sent["case"]["number"] == number
    assert "call the vendor" not in request.body.decode()
    comments = {c["id"]: c for c in await channel.comments(opened["case_id"])}
    assert comments[comment["id"]]["delivery"] == {
        "status": "sent",
        "provider_id": "S-9",
        "error": None,
        "attempts": 1,
    }
    assert comments[note["id"]]["delivery"] is None
    # The customer's answer to casedesk's reply threads by the Message-ID casedesk gave it.
    answer = _mail(
        "m3", thread_id="T-new", in_reply_to=f"<{sent['message_id']}>", message_id="<m3@x>"
    )
    assert (await channel.deliver(answer))["case_id"] == opened["case_id"]


async def test_a_failed_delivery_is_retried_then_failed_and_can_be_sent_again(
    channel: Channel, server: LocalHTTPServer, container: Container
) -> None:
    opened = await channel.deliver(_mail("m1"))
    server.script("/send", Reply.json({"error": "overloaded"}, status=503))
    comment = await channel.reply(opened["case_id"], "Hello")
    await _run_delivery_now(channel, container)
    (found,) = await channel.comments(opened["case_id"])
    assert found["delivery"]["status"] == "pending"
    assert found["delivery"]["attempts"] >= 1
    assert "503" in found["delivery"]["error"]
    # A refusal is final: the comment says failed, with the provider's answer.
    server.script("/send", Reply.json({"error": "recipient unknown"}, status=400))
    await _run_delivery_now(channel, container)
    (found,) = await channel.comments(opened["case_id"])
    assert found["delivery"]["status"] == "failed"
    assert "recipient unknown" in found["delivery"]["error"]
    assert await channel.send_replies() == 0
    # An agent sends it again, and this time it goes.
    server.script("/send", Reply.json({"sent": {"id": "S-2"}}))
    response = await channel.desk.http.post(
        f"/api/v1/cases/{opened['case_id']}/comments/{comment['id']}/redeliver",
        headers=channel.desk.headers,
    )
    assert response.status_code == 202, response.text
    assert response.json()["delivery"]["status"] == "pending"
    assert await channel.send_replies() == 1
    (found,) = await channel.comments(opened["case_id"])
    assert found["delivery"]["status"] == "sent"
    assert found["delivery"]["provider_id"] == "S-2"
    again = await channel.desk.http.post(
        f"/api/v1/cases/{opened['case_id']}/comments/{comment['id']}/redeliver",
        headers=channel.desk.headers,
    )
    assert again.status_code == 409
    assert "only a failed delivery" in again.json()["detail"]


async def test_a_rate_limited_delivery_waits_for_retry_after(
    channel: Channel, server: LocalHTTPServer, container: Container
) -> None:
    opened = await channel.deliver(_mail("m1"))
    limited = Reply.json({"error": "slow down"}, status=429, headers={"Retry-After": "600"})
    server.script("/send", limited)
    comment = await channel.reply(opened["case_id"], "Hello")
    before = utcnow()
    await channel.send_replies(rounds=1)
    job = await _delivery_job(container, channel, comment["id"])
    assert job.status == "pending"
    assert job.due_at >= before + timedelta(seconds=590)
    server.script("/send", Reply.json({"sent": {"id": "S-3"}}))
    await _run_delivery_now(channel, container)
    (found,) = await channel.comments(opened["case_id"])
    assert found["delivery"]["status"] == "sent"
    assert len(server.requests_to("/send")) >= 2


async def test_a_message_to_a_closed_case_reopens_it_or_opens_a_follow_up(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    channel = await _channel(desk, container, server)
    opened = await channel.deliver(_mail("m1"))
    await _solve(desk, opened["case_id"])
    output = await channel.deliver(_mail("m2", thread_id="T-m1", text="It is back"))
    assert output["outcome"] == "commented"
    assert output["case_id"] == opened["case_id"]
    case = await channel.case(opened["case_id"])
    assert case["state"] == "open"
    assert case["closed"] is False


async def test_a_follow_up_case_is_linked_to_the_closed_one(
    desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    channel = await _channel(desk, container, server, on_closed="follow_up")
    opened = await channel.deliver(_mail("m1"))
    await _solve(desk, opened["case_id"])
    output = await channel.deliver(_mail("m2", thread_id="T-m1", text="It is back"))
    assert output["outcome"] == "followed_up"
    assert output["case_id"] != opened["case_id"]
    follow = await channel.case(output["case_id"])
    assert follow["parent_id"] == opened["case_id"]
    assert (await channel.case(opened["case_id"]))["closed"] is True
    # The thread now belongs to the follow-up.
    later = await channel.deliver(_mail("m3", thread_id="T-m1"))
    assert later["case_id"] == output["case_id"]


async def _found(channel: Channel, settle: Settle, q: str) -> list[str]:
    """The cases a search finds once the indexer has run."""
    await settle()
    response = await channel.desk.http.get(
        "/api/v1/cases", params={"q": q}, headers=channel.desk.headers
    )
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_edits_and_deletions_at_the_source_are_recorded(channel: Channel) -> None:
    indexer = SearchIndexer(channel.container.database).group()
    async with delivering_to(channel.container, indexer) as settle:
        await _edited_and_deleted(channel, settle)


async def _edited_and_deleted(channel: Channel, settle: Settle) -> None:
    opened = await channel.deliver(_mail("m1"))
    await channel.deliver(_mail("m2", thread_id="T-m1", text="first words"))
    edit = {"kind": "edit", "id": "m2", "text": "second thoughts"}
    assert (await channel.deliver(edit))["outcome"] == "edited"
    (comment,) = await channel.comments(opened["case_id"])
    assert comment["body"] == "second thoughts"
    assert comment["edited_at"] is not None
    # The search finds the comment as it is now (comment.changed reindexes the case).
    assert await _found(channel, settle, '"second thoughts"') == [opened["case_id"]]
    assert await _found(channel, settle, '"first words"') == []
    assert (await channel.deliver({"kind": "delete", "id": "m2"}))["outcome"] == "deleted"
    assert await _found(channel, settle, '"second thoughts"') == []
    (comment,) = await channel.comments(opened["case_id"])
    assert comment["deleted_at"] is not None
    assert comment["body"] == "second thoughts"
    history = await channel.desk.http.get(
        f"/api/v1/cases/{opened['case_id']}/history", headers=channel.desk.headers
    )
    codes = [entry["code"] for entry in history.json()["items"]]
    assert "comment.edited_at_source" in codes
    assert "comment.deleted_at_source" in codes
    unknown = await channel.deliver({"kind": "edit", "id": "never-seen", "text": "x"})
    assert unknown["outcome"] == "ignored"


async def test_another_tenants_threads_are_invisible(
    channel: Channel, desk: Desk, container: Container, server: LocalHTTPServer
) -> None:
    from tests.conftest import Tenants
    from tests.support.cases import make_desk

    opened = await channel.deliver(_mail("m1"))
    other = await make_desk(desk.http, await Tenants(container).create(), container)
    theirs = await _channel(other, container, server)
    output = await theirs.deliver(_mail("m2", thread_id="T-m1", references="<m1@mail.example.com>"))
    assert output["outcome"] == "opened"
    assert output["case_id"] != opened["case_id"]
    async with container.unit_of_work(desk.tenant.id) as uow:
        rows = (await uow.session.scalars(select(ChannelMessageRecord))).all()
    assert {row.external_id for row in rows} == {"m1"}


async def test_redelivery_of_an_unknown_or_another_tenants_comment_is_404(
    channel: Channel, server: LocalHTTPServer, container: Container
) -> None:
    from tests.conftest import Tenants
    from tests.support.cases import make_desk

    opened = await channel.deliver(_mail("m1"))
    server.script("/send", Reply.json({"error": "no"}, status=400))
    comment = await channel.reply(opened["case_id"], "Hello")
    await channel.send_replies()
    url = f"/api/v1/cases/{opened['case_id']}/comments/{{}}/redeliver"
    unknown = await channel.desk.http.post(url.format(uuid.uuid4()), headers=channel.desk.headers)
    assert unknown.status_code == 404
    bad = await channel.desk.http.post(url.format("not-an-id"), headers=channel.desk.headers)
    assert bad.status_code == 422
    other = await make_desk(channel.desk.http, await Tenants(container).create(), container)
    theirs = await other.http.post(url.format(comment["id"]), headers=other.headers)
    assert theirs.status_code == 404
    (found,) = await channel.comments(opened["case_id"])
    assert found["delivery"]["status"] == "failed"


async def test_receive_message_needs_a_channel_connector(desk: Desk) -> None:
    body = {
        "code": "not-mail",
        "name": "Not mail",
        "trigger": {"connector": "webhook", "trigger": "delivery"},
        "steps": [{"name": "thread", "kind": "receive_message", "template": "question"}],
    }
    await desk.http.post("/api/v1/workflows", json=body, headers=desk.headers)
    response = await desk.http.post("/api/v1/workflows/not-mail/publish", headers=desk.headers)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert (error["field"], error["type"]) == ("steps.0.kind", "not_a_channel")


async def test_a_comment_id_from_a_channel_is_unique_per_tenant_and_channel(desk: Desk) -> None:
    response = await desk.http.post(
        "/api/v1/cases",
        json={"template": "question", "title": "Via API"},
        headers=desk.headers,
    )
    case_id = response.json()["id"]
    body = {"body": "hi", "channel": "chat", "external_id": "X-1"}
    url = f"/api/v1/cases/{case_id}/comments"
    assert (await desk.http.post(url, json=body, headers=desk.headers)).status_code == 201
    again = await desk.http.post(url, json=body, headers=desk.headers)
    assert again.status_code == 409, again.text


# --- helpers ----------------------------------------------------------------------------------


async def _solve(desk: Desk, case_id: str) -> None:
    for action in ("solve",):
        response = await desk.http.post(
            f"/api/v1/cases/{case_id}/actions/{action}", headers=desk.headers
        )
        assert response.status_code == 200, response.text


async def _delivery_job(container: Container, channel: Channel, comment_id: str) -> ScheduledJob:
    async with container.unit_of_work(channel.desk.tenant.id) as uow:
        job = await uow.session.scalar(
            select(ScheduledJob).where(ScheduledJob.key == deliver_key(uuid.UUID(comment_id)))
        )
    assert job is not None
    return job


async def _run_delivery_now(channel: Channel, container: Container) -> None:
    """Make the tenant's pending deliveries due now, and run them once."""
    await run_due_now(container, channel.desk.tenant.id, DELIVER)

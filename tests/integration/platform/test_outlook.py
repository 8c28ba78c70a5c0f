"""Outlook mail, end to end: the built-in ``outlook`` connector through the real hook ingress,
inbox worker, subscription lifecycle, runner, enricher and reply delivery, against a local
Microsoft Graph (``tests/support/graph.py``) that validates the hook, sends change and
lifecycle notifications and answers its mail API as Graph does.

A new mail opens one case with its subject, text and sender; an answer in its conversation is
one comment; an agent's public comment goes back with /reply in the conversation, an internal
note does not, and the reply never comes back as a comment; an out-of-office opens nothing;
a mail that lost its headers threads by the ``[#N]`` in its subject; notifications that arrive
together are fetched with one $batch; a repeated notification, a lost one caught up by the
``missed`` lifecycle notification or by a renewal that finds the subscription expired, a
delta token Graph forgot, and a 429 each end with every message exactly once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from casedesk.bootstrap import Container
from tests.support.cases import Desk
from tests.support.graph import ACCESS_TOKEN, GraphMail, graph_server
from tests.support.graph_desk import GraphDesk

MESSAGES = "/v1.0/me/messages/"


class OutlookDesk(GraphDesk):
    def __init__(self, desk: Desk, container: Container, graph: GraphMail) -> None:
        super().__init__(desk, container)
        self.graph = graph


@pytest.fixture
async def outlook(desk: Desk, container: Container) -> AsyncIterator[OutlookDesk]:
    async with graph_server(desk.http, token=ACCESS_TOKEN) as graph:
        graph.add_message("Old mail, before casedesk")
        connected = OutlookDesk(desk, container, graph)
        await connected.connect("outlook", "new_mail", {"base_url": graph.base_url}, "outlook-in")
        yield connected


def _fetched(graph: GraphMail) -> list[str]:
    return [seen.path.removeprefix(MESSAGES) for seen in graph.requests("GET", MESSAGES)]


async def test_a_new_mail_opens_one_case_and_an_answer_in_its_conversation_is_a_comment(
    outlook: OutlookDesk,
) -> None:
    graph = outlook.graph
    (request,) = graph.requests("POST", "/v1.0/subscriptions")
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert request.body["resource"] == "me/mailFolders('inbox')/messages"
    assert request.body["changeType"] == "created"
    first = await graph.receive(
        "Printer on fire",
        html="<html><head><style>p{}</style></head><body><p>It <b>smokes</b>.</p>"
        "<p>Help!</p></body></html>",
    )
    await outlook.work()
    again = graph.answer_to(first, "RE: Printer on fire", "Still smoking.")
    await graph.notify(graph.only_subscription(), again)
    await outlook.work()
    assert await outlook.outcomes() == ["opened", "commented"]
    (case,) = await outlook.cases()
    found = await outlook.case(case["id"])
    assert found["title"] == "Printer on fire"
    assert found["description"] == "It smokes.\n\nHelp!"
    assert found["customer"]["email"] == "ann@example.com"
    assert found["customer"]["name"] == "Ann Smith"
    assert found["channel"] == "outlook"
    (comment,) = await outlook.comments(case["id"])
    assert comment["body"] == "Still smoking."
    assert comment["thread_id"] == first["conversationId"]
    # Each message fetched once, with its headers; the old mail never.
    assert sorted(_fetched(graph)) == sorted([first["id"], again["id"]])
    assert "internetMessageHeaders" in graph.requests("GET", MESSAGES)[0].query


async def test_an_agents_comment_goes_back_with_reply_and_a_note_does_not(
    outlook: OutlookDesk,
) -> None:
    graph = outlook.graph
    first = await graph.receive("Printer on fire", text="It smokes.")
    await outlook.work()
    (case,) = await outlook.cases()
    comment = await outlook.reply(case["id"], "Pull the plug <now> & wait")
    note = await outlook.reply(case["id"], "Internal: the vendor again", public=False)
    assert note["delivery"] is None
    assert await outlook.send_replies() == 1
    (posted,) = graph.requests("POST", MESSAGES)
    assert posted.path == f"{MESSAGES}{first['id']}/reply"
    assert posted.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    message = posted.body["message"]
    assert message["body"] == {
        "contentType": "html",
        "content": "<p>Pull the plug &lt;now&gt; &amp; wait</p>",
    }
    assert message["toRecipients"] == [
        {"emailAddress": {"address": "ann@example.com", "name": "Ann Smith"}}
    ]
    headers = {h["name"]: h["value"] for h in message["internetMessageHeaders"]}
    assert headers["X-Casedesk-Case"] == str(case["number"])
    assert headers["X-Casedesk-Message-Id"].startswith("<casedesk.")
    (sent,) = graph.sent
    assert sent["conversationId"] == first["conversationId"]
    assert "vendor" not in str(graph.sent)
    shown = {c["id"]: c for c in await outlook.comments(case["id"])}
    assert shown[comment["id"]]["delivery"]["status"] == "sent"
    # The reply comes back to the inbox (the customer copied the mailbox): it is casedesk's own.
    await graph.notify(graph.only_subscription(), sent)
    # The customer answers the reply from their mail program.
    answer = graph.answer_to(sent, "RE: Printer on fire", "Unplugged, thanks")
    await graph.notify(graph.only_subscription(), answer)
    await outlook.work()
    assert (await outlook.outcomes())[1:] == ["own", "commented"]
    bodies = [c["body"] for c in await outlook.comments(case["id"])]
    assert bodies == [
        "Pull the plug <now> & wait",
        "Internal: the vendor again",
        "Unplugged, thanks",
    ]
    assert len(await outlook.cases()) == 1


async def test_an_out_of_office_reply_opens_nothing(outlook: OutlookDesk) -> None:
    await outlook.graph.receive(
        "Automatic reply: Printer on fire",
        text="I am out of the office until Monday.",
        headers=[("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")],
    )
    await outlook.work()
    assert await outlook.outcomes() == ["automatic"]
    assert await outlook.cases() == []


async def test_a_mail_that_lost_its_headers_threads_by_the_case_number_in_its_subject(
    outlook: OutlookDesk,
) -> None:
    graph = outlook.graph
    first = await graph.receive("Printer on fire", text="It smokes.")
    await outlook.work()
    (case,) = await outlook.cases()
    lost = graph.answer_to(
        first, f"Fwd: Printer on fire [#{case['number']}]", "Any news?", keep_headers=False
    )
    assert lost["conversationId"] != first["conversationId"]
    await graph.notify(graph.only_subscription(), lost)
    await outlook.work()
    assert await outlook.outcomes() == ["opened", "commented"]
    assert [c["body"] for c in await outlook.comments(case["id"])] == ["Any news?"]


async def test_notifications_that_arrive_together_are_fetched_with_one_batch(
    outlook: OutlookDesk,
) -> None:
    graph = outlook.graph
    mails = [graph.add_message(f"Question {n}", text=f"Body {n}") for n in range(5)]
    graph.throttle("batch_item", 1)  # Graph answers one request of the batch 429
    assert (await graph.notify(graph.only_subscription(), *mails)).status_code == 202
    await outlook.work()
    (batch,) = graph.requests("POST", "/v1.0/$batch")
    asked = batch.body["requests"]
    assert sorted(r["id"] for r in asked) == sorted(m["id"] for m in mails)
    assert all(r["method"] == "GET" and r["url"].startswith("/me/messages/") for r in asked)
    assert all("internetMessageHeaders" in r["url"] for r in asked)
    # Only the one answered 429 inside the batch is asked for again, alone.
    assert _fetched(graph) == [asked[0]["id"]]
    assert await outlook.outcomes() == ["opened"] * 5
    titles = sorted(c["title"] for c in await outlook.cases())
    assert titles == [f"Question {n}" for n in range(5)]


async def test_a_lone_notification_is_fetched_with_a_get_not_a_batch(outlook: OutlookDesk) -> None:
    graph = outlook.graph
    mail = await graph.receive("Printer on fire", text="It smokes.")
    await outlook.work()
    assert graph.requests("POST", "/v1.0/$batch") == []
    assert _fetched(graph) == [mail["id"]]


async def test_a_repeated_notification_makes_one_case(outlook: OutlookDesk) -> None:
    graph = outlook.graph
    mail = await graph.receive("Printer on fire", text="It smokes.")
    for _ in range(2):  # Graph sends it again when the answer was slow
        assert (await graph.notify(graph.only_subscription(), mail)).status_code == 202
    await outlook.work()
    assert await outlook.outcomes() == ["opened"]
    assert len(await outlook.cases()) == 1


async def test_a_lost_notification_is_caught_up_by_the_missed_lifecycle_notification(
    outlook: OutlookDesk,
) -> None:
    graph = outlook.graph
    seen = await graph.receive("Notified", text="one")
    graph.lose()
    lost = await graph.receive("Never notified", text="two")
    await outlook.work()
    assert [c["title"] for c in await outlook.cases()] == ["Notified"]
    assert (await graph.lifecycle(graph.only_subscription(), "missed")).status_code == 202
    await outlook.work()
    assert sorted(c["title"] for c in await outlook.cases()) == ["Never notified", "Notified"]
    assert sorted(_fetched(graph)) == sorted([seen["id"], lost["id"]])
    # A delta token Graph no longer knows starts a fresh delta; nothing comes twice. (After
    # a renewal: a lifecycle notification repeated word for word is taken once.)
    assert await outlook.renew() == 1
    graph.expire_delta()
    graph.lose()
    late = await graph.receive("Lost again", text="three")
    before = len(graph.requests("GET", "/v1.0/me/mailFolders/inbox/messages/delta"))
    assert (await graph.lifecycle(graph.only_subscription(), "missed")).status_code == 202
    await outlook.work()
    deltas = graph.requests("GET", "/v1.0/me/mailFolders/inbox/messages/delta")[before:]
    assert "$deltatoken" in deltas[0].query  # answered 410
    assert "token" not in deltas[1].query  # a fresh delta, every page of it
    assert len(deltas) == 1 + 2  # four messages, two a page
    assert sorted(c["title"] for c in await outlook.cases()) == [
        "Lost again",
        "Never notified",
        "Notified",
    ]
    assert _fetched(graph).count(late["id"]) == 1
    assert len(await outlook.executions()) == 3


async def test_an_expired_subscription_is_made_again_and_the_gap_caught_up(
    outlook: OutlookDesk,
) -> None:
    graph = outlook.graph
    await graph.receive("Before", text="one")
    await outlook.work()
    expired = graph.only_subscription()
    graph.forget(expired.id)  # it expired at Graph: what arrives now is never notified
    graph.add_message("In the gap", text="two")
    assert await outlook.renew() == 1
    await outlook.work()
    remade = graph.only_subscription()
    assert remade.id != expired.id
    await graph.receive("After", text="three")
    # Graph also says it removed the old one: that changes nothing more.
    await graph.lifecycle(expired, "subscriptionRemoved")
    await outlook.work()
    assert sorted(c["title"] for c in await outlook.cases()) == ["After", "Before", "In the gap"]
    assert await outlook.outcomes() == ["opened"] * 3
    assert graph.only_subscription().id == remade.id


async def test_a_rate_limited_fetch_waits_for_retry_after_and_makes_one_case(
    outlook: OutlookDesk,
) -> None:
    graph = outlook.graph
    graph.throttle("message", 1)
    mail = await graph.receive("Printer on fire", text="It smokes.")
    started = time.monotonic()
    await outlook.work()
    assert time.monotonic() - started >= 1
    assert _fetched(graph) == [mail["id"], mail["id"]]
    assert await outlook.outcomes() == ["opened"]
    assert len(await outlook.cases()) == 1


async def test_a_rate_limited_reply_is_sent_once_later(outlook: OutlookDesk) -> None:
    graph = outlook.graph
    await graph.receive("Printer on fire", text="It smokes.")
    await outlook.work()
    (case,) = await outlook.cases()
    graph.throttle("reply", 30)
    await outlook.reply(case["id"], "On our way")
    await outlook.send_replies(rounds=1)
    (waiting,) = await outlook.comments(case["id"])
    assert waiting["delivery"]["status"] == "pending"
    assert "429" in waiting["delivery"]["error"]
    await outlook.send_replies()
    assert len(graph.requests("POST", MESSAGES)) == 2
    assert len(graph.sent) == 1
    (sent,) = await outlook.comments(case["id"])
    assert sent["delivery"]["status"] == "sent"


async def test_reauthorization_required_renews_the_subscription_at_once(
    outlook: OutlookDesk,
) -> None:
    graph = outlook.graph
    subscription = graph.only_subscription()
    before = subscription.expires
    assert (await graph.lifecycle(subscription, "reauthorizationRequired")).status_code == 202
    await outlook.work()
    assert await outlook.renew() == 1
    (patch,) = graph.requests("PATCH", "/v1.0/subscriptions/")
    assert patch.path == f"/v1.0/subscriptions/{subscription.id}"
    assert graph.only_subscription().expires >= before
    await graph.receive("After the renewal", text="still here")
    await outlook.work()
    assert [c["title"] for c in await outlook.cases()] == ["After the renewal"]


async def test_a_mail_deleted_before_it_is_fetched_is_dropped(outlook: OutlookDesk) -> None:
    graph = outlook.graph
    mail = await graph.receive("Deleted at once", text="gone")
    graph.messages.remove(mail)  # Graph answers 404 ErrorItemNotFound for it now
    await outlook.work()
    (made,) = await outlook.executions()
    assert made.status == "dropped"
    assert await outlook.cases() == []

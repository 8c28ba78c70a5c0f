"""Slack, end to end: the built-in connector through the real hook ingress, inbox worker,
runner, enricher and reply delivery, against a local Slack (``tests/support/slack.py``) that
signs its Events API deliveries and answers its Web API as Slack does.

A message in a connected channel opens one case with its text and its author's name and
e-mail (users.info, once per person); a reply in its thread is one comment; an agent's public
comment goes back with chat.postMessage in the thread, an internal note does not; edits and
deletions are recorded; the bot's own echo is never a comment; Slack's retries, a 429 on
chat.postMessage and a 429 on users.info each end with every message exactly once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import func, select

from casedesk.activities.channel_delivery import DELIVER
from casedesk.bootstrap import Container
from casedesk.kit.clock import utcnow
from casedesk.platform import instant
from casedesk.platform.instant import PROCESS
from casedesk.platform.intake import RUN
from casedesk.store.models import Execution, InboxDelivery, ScheduledJob
from tests.support.cases import Desk
from tests.support.channels import DeskSide
from tests.support.instant import run_jobs
from tests.support.slack import (
    BOT_ID,
    BOT_TOKEN,
    SIGNING_SECRET,
    Sent,
    SlackWorkspace,
    slack_server,
)
from tests.support.workflows import add_connection, published


class SlackDesk(DeskSide):
    """A tenant with a Slack connection whose channel #support is connected to a workflow."""

    def __init__(self, desk: Desk, container: Container, slack: SlackWorkspace) -> None:
        super().__init__(desk, container)
        self.slack = slack
        self.support = slack.add_channel("support")
        self.random = slack.add_channel("random")
        self.ann = slack.add_user("ann", "ann@example.com", real_name="Ann Smith")
        self.bob = slack.add_user("bob", "bob@example.com", real_name="Bob Jones")

    async def connect(self) -> None:
        connection = await add_connection(
            self.container,
            self.desk.tenant.id,
            "slack",
            {"base_url": self.slack.api_url, "channels": [self.support], "bot_id": BOT_ID},
            {"bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET},
        )
        workflow = await published(
            self.desk,
            {
                "code": "slack-in",
                "name": "Slack support",
                "trigger": {"connector": "slack", "trigger": "events", "connection_id": connection},
                "steps": [
                    {"name": "thread", "kind": "receive_message", "template": "question"}
                    | {"queue": "support", "priority": "normal"}
                ],
            },
        )
        self.subscription_id = workflow["subscription"]["id"]
        async with self.container.unit_of_work(self.desk.tenant.id) as uow:
            subscription = await uow.subscriptions.get(uuid.UUID(self.subscription_id))
        token = instant.hook_token(subscription, self.container.box)
        assert token is not None
        self.slack.request_url = f"/hooks/{token}"

    async def work(self) -> int:
        """What the workers would do: the inbox, then the executions it queued."""
        return await run_jobs(self.container, self.desk.tenant.id, PROCESS, RUN)

    async def stored(self) -> int:
        async with self.container.unit_of_work(self.desk.tenant.id) as uow:
            count = await uow.session.scalar(
                select(func.count())
                .select_from(InboxDelivery)
                .where(InboxDelivery.subscription_id == uuid.UUID(self.subscription_id))
            )
        return int(count or 0)


@pytest.fixture
async def slack(desk: Desk, container: Container) -> AsyncIterator[SlackDesk]:
    async with slack_server(desk.http) as workspace:
        connected = SlackDesk(desk, container, workspace)
        await connected.connect()
        yield connected


def _acked(sent: Sent) -> None:
    assert sent.status == 200, sent.answer
    assert sent.seconds < 3  # Slack gives up on an answer after 3 s and retries


# --- the Events API at the hook ---------------------------------------------------------


async def test_the_url_verification_is_answered_with_its_challenge(slack: SlackDesk) -> None:
    sent = await slack.slack.verify_url()
    assert sent.status == 200
    assert orjson.loads(sent.answer) == {"challenge": orjson.loads(sent.body)["challenge"]}
    assert await slack.stored() == 0


async def test_a_forged_tampered_or_late_delivery_is_refused_with_nothing_stored(
    slack: SlackDesk,
) -> None:
    workspace = slack.slack
    event = {"type": "message", "channel": slack.support, "user": slack.ann, "text": "hi"}
    body = workspace.envelope(event | {"ts": "1.0"})
    forged = workspace.headers(body) | {"X-Slack-Signature": "v0=" + "0" * 64}
    tampered = workspace.headers(body)
    cases = [
        await workspace.caller.post(workspace.request_url, content=body, headers=forged),
        await workspace.caller.post(
            workspace.request_url, content=body.replace(b'"hi"', b'"ha"'), headers=tampered
        ),
    ]
    late = await workspace.late(event | {"ts": "2.0"}, minutes=6)
    assert [response.status_code for response in cases] == [401, 401]
    assert late.status == 401
    assert b"more than 300 s from now" in late.answer
    # A delivery signed 4 minutes ago is still inside the window.
    recent = await workspace.late(event | {"ts": "3.0"}, minutes=4)
    _acked(recent)
    assert await slack.stored() == 1


async def test_slacks_retries_are_stored_once_and_make_one_case(slack: SlackDesk) -> None:
    workspace = slack.slack
    await workspace.post(slack.support, slack.ann, "The printer is on fire")
    first = workspace.sent[-1]
    _acked(first)
    for number, reason in ((1, "http_timeout"), (2, "http_error"), (3, "http_timeout")):
        _acked(await workspace.retry(first, number, reason))
    _acked(await workspace.replay(first))  # the same signature again, inside the window
    assert await slack.stored() == 1
    await slack.work()
    assert await slack.outcomes() == ["opened"]
    assert len(await slack.cases()) == 1


# --- messages become cases and comments -------------------------------------------------


async def test_a_conversation_in_slack_is_one_case_and_its_comments(slack: SlackDesk) -> None:
    workspace = slack.slack
    root = await workspace.post(
        slack.support, slack.ann, "Printer *on fire* &amp; smoking, see <https://x.example/1|log>"
    )
    await workspace.reply(slack.support, root, slack.ann, "Still smoking")
    await workspace.reply(slack.support, root, slack.bob, "Same here <@U0CASEBOT>")
    await slack.work()
    assert await slack.outcomes() == ["opened", "commented", "commented"]
    (case,) = await slack.cases()
    found = await slack.case(case["id"])
    assert found["description"] == "Printer *on fire* & smoking, see log (https://x.example/1)"
    assert found["customer"]["email"] == "ann@example.com"
    assert found["customer"]["name"] == "Ann Smith"
    assert found["channel"] == "slack"
    comments = await slack.comments(case["id"])
    assert [c["body"] for c in comments] == ["Still smoking", "Same here @U0CASEBOT"]
    assert {c["thread_id"] for c in comments} == {f"{slack.support}:{root['ts']}"}
    assert all(c["channel"] == "slack" for c in comments)
    # users.info once per person, however many messages they wrote
    looked_up = sorted(call.args["user"] for call in workspace.calls_to("users.info"))
    assert looked_up == sorted([slack.ann, slack.bob])
    assert all(call.http_method == "GET" for call in workspace.calls_to("users.info"))
    assert workspace.calls_to("files.info") == []  # a message event carries the whole message


async def test_an_agents_comment_goes_back_in_the_thread_and_a_note_does_not(
    slack: SlackDesk,
) -> None:
    workspace = slack.slack
    root = await workspace.post(slack.support, slack.ann, "Printer on fire")
    await slack.work()
    (case,) = await slack.cases()
    comment = await slack.reply(case["id"], "Pull the plug <now> & wait")
    assert comment["delivery"]["status"] == "pending"
    note = await slack.reply(case["id"], "Internal: the vendor again", public=False)
    assert note["delivery"] is None
    assert await slack.send_replies() == 1
    (posted,) = workspace.calls_to("chat.postMessage")
    assert posted.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert posted.args == {
        "channel": slack.support,
        "thread_ts": root["ts"],
        "text": "Pull the plug &lt;now&gt; &amp; wait",
        "unfurl_links": False,
        "unfurl_media": False,
    }
    (answer,) = workspace.replies_in(slack.support, root["ts"])
    assert "vendor" not in str(workspace.channels[slack.support].messages)
    shown = {c["id"]: c for c in await slack.comments(case["id"])}
    assert shown[comment["id"]]["delivery"]["status"] == "sent"
    assert shown[comment["id"]]["delivery"]["provider_id"] == answer["ts"]
    # Slack sends the app its bot's own post; it never comes back as a comment.
    (echo,) = await workspace.deliver_echoes()
    _acked(echo)
    await slack.work()
    assert (await slack.outcomes())[-1] == "own"
    assert len(await slack.comments(case["id"])) == 2
    # The customer answers in the thread: a comment on the same case.
    await workspace.reply(slack.support, root, slack.ann, "Unplugged, thanks")
    await slack.work()
    assert [c["body"] for c in await slack.comments(case["id"])][-1] == "Unplugged, thanks"
    assert len(await slack.cases()) == 1


async def test_edits_and_deletions_are_recorded(slack: SlackDesk) -> None:
    workspace = slack.slack
    root = await workspace.post(slack.support, slack.ann, "Printer on fier")
    reply = await workspace.reply(slack.support, root, slack.ann, "It smoeks")
    await slack.work()
    await workspace.edit(slack.support, reply, "It smokes")
    await workspace.delete(slack.support, reply)
    await slack.work()
    assert await slack.outcomes() == ["opened", "commented", "edited", "deleted"]
    (case,) = await slack.cases()
    (comment,) = await slack.comments(case["id"])
    assert comment["body"] == "It smokes"
    assert comment["edited_at"] is not None
    assert comment["deleted_at"] is not None


async def test_what_is_not_a_person_writing_in_a_connected_channel_opens_nothing(
    slack: SlackDesk,
) -> None:
    workspace = slack.slack
    await workspace.bot_post(slack.support, "Deploy finished")
    await workspace.send(
        {
            "type": "message",
            "subtype": "channel_join",
            "user": slack.bob,
            "text": f"<@{slack.bob}> has joined the channel",
            "channel": slack.support,
            "ts": "1700000000.000001",
        }
    )
    await workspace.post(slack.random, slack.ann, "Lunch?")
    await slack.work()
    assert await slack.outcomes() == ["ignored", "ignored", "ignored"]
    assert await slack.cases() == []
    assert workspace.calls_to("users.info") == []


async def test_a_shared_file_is_fetched_with_files_info_and_threads(slack: SlackDesk) -> None:
    workspace = slack.slack
    root = await workspace.post(slack.support, slack.ann, "Printer on fire")
    file = await workspace.share_file(slack.support, slack.ann, "Smoke photo", thread_ts=root["ts"])
    await slack.work()
    assert await slack.outcomes() == ["opened", "commented"]
    (fetched,) = workspace.calls_to("files.info")
    assert fetched.args["file"] == file["id"]
    (case,) = await slack.cases()
    (comment,) = await slack.comments(case["id"])
    assert comment["body"] == f"[file: Smoke photo] {file['permalink']}"
    share_ts = file["shares"]["public"][slack.support][0]["ts"]
    assert comment["external_id"] == f"{slack.support}:{share_ts}"


# --- rate limits ------------------------------------------------------------------------


async def test_a_rate_limited_users_info_waits_for_retry_after(slack: SlackDesk) -> None:
    workspace = slack.slack
    workspace.rate_limit("users.info", 1)
    await workspace.post(slack.support, slack.ann, "Printer on fire")
    started = time.monotonic()
    await slack.work()
    assert time.monotonic() - started >= 1
    first, second = workspace.calls_to("users.info")
    assert second.args == first.args
    assert await slack.outcomes() == ["opened"]
    (case,) = await slack.cases()
    assert (await slack.case(case["id"]))["customer"]["email"] == "ann@example.com"


async def test_a_rate_limited_reply_waits_for_retry_after_and_is_posted_once(
    slack: SlackDesk, container: Container
) -> None:
    workspace = slack.slack
    root = await workspace.post(slack.support, slack.ann, "Printer on fire")
    await slack.work()
    (case,) = await slack.cases()
    workspace.rate_limit("chat.postMessage", 120)
    comment = await slack.reply(case["id"], "On our way")
    before = utcnow()
    await slack.send_replies(rounds=1)
    async with container.unit_of_work(slack.desk.tenant.id) as uow:
        job = await uow.session.scalar(
            select(ScheduledJob).where(
                ScheduledJob.kind == DELIVER, ScheduledJob.status == "pending"
            )
        )
        assert job is not None
        assert job.due_at >= before + timedelta(seconds=115)
    (waiting,) = await slack.comments(case["id"])
    assert waiting["delivery"]["status"] == "pending"
    assert "ratelimited" in waiting["delivery"]["error"] or "429" in waiting["delivery"]["error"]
    await slack.send_replies()
    assert len(workspace.calls_to("chat.postMessage")) == 2
    (answer,) = workspace.replies_in(slack.support, root["ts"])
    assert answer["text"] == "On our way"
    (sent,) = await slack.comments(case["id"])
    assert sent["id"] == comment["id"]
    assert sent["delivery"]["status"] == "sent"


async def test_a_reply_slack_refuses_with_ok_false_fails_with_its_error(slack: SlackDesk) -> None:
    workspace = slack.slack
    await workspace.post(slack.support, slack.ann, "Printer on fire")
    await slack.work()
    (case,) = await slack.cases()
    del workspace.channels[slack.support]  # archived and gone
    await slack.reply(case["id"], "Hello?")
    await slack.send_replies()
    (comment,) = await slack.comments(case["id"])
    assert comment["delivery"]["status"] == "failed"
    assert "channel_not_found" in comment["delivery"]["error"]


# --- what Slack no longer has -----------------------------------------------------------


async def test_an_author_slack_does_not_know_is_kept_by_id(slack: SlackDesk) -> None:
    workspace = slack.slack
    await workspace.post(slack.support, "U0GUEST001", "Hello from a guest")
    await slack.work()
    assert await slack.outcomes() == ["opened"]
    (case,) = await slack.cases()
    customer = (await slack.case(case["id"]))["customer"]
    assert customer["email"].startswith("u0guest001@")
    assert len(workspace.calls_to("users.info")) == 1


async def test_a_file_deleted_before_it_is_fetched_is_dropped(slack: SlackDesk) -> None:
    workspace = slack.slack
    file = await workspace.share_file(slack.support, slack.ann, "Gone soon")
    del workspace.files[file["id"]]
    await slack.work()
    async with slack.container.unit_of_work(slack.desk.tenant.id) as uow:
        (made,) = (
            await uow.session.scalars(
                select(Execution).where(
                    Execution.subscription_id == uuid.UUID(slack.subscription_id)
                )
            )
        ).all()
    assert made.status == "dropped"
    assert await slack.cases() == []

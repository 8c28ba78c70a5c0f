"""Gmail as a channel, end to end: the built-in connector through Pub/Sub pushes at the hook,
the inbox worker, the resync that reads users.history.list, the enricher (messages.get,
format=raw), the threading rules and reply delivery with messages.send, against a local Gmail
(``tests/support/gmail.py``) authorized through a local OAuth server.

A new mail opens one case with its subject, body and sender; a reply in its thread is one
comment; an agent's public comment goes out in the same thread with its own Message-ID and
In-Reply-To / References, an internal note does not; casedesk's own sent mail in the history
is never a comment; a mail whose threading headers were lost threads by its ``[#N]``; an
out-of-office reply opens nothing; GB2312 and encoded words read correctly.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from casedesk.bootstrap import Container
from tests.support.cases import Desk
from tests.support.connections import REDIRECT_URI
from tests.support.gmail import ADDRESS, GmailDesk, gmail_server, mail
from tests.support.oauth_server import oauth_server


@pytest.fixture
async def gmail(desk: Desk, container: Container) -> AsyncIterator[GmailDesk]:
    async with oauth_server(REDIRECT_URI) as oauth, gmail_server(desk.http, oauth) as mailbox:
        await mailbox.deliver(mail("Old mail, before casedesk"), push=False)
        connected = GmailDesk(desk, container, mailbox)
        await connected.connect()
        yield connected


async def test_a_new_mail_opens_one_case_and_a_reply_in_its_thread_is_a_comment(
    gmail: GmailDesk,
) -> None:
    mailbox = gmail.gmail
    first = await mailbox.deliver(mail("Printer on fire", "It smokes.\r\nPlease help."))
    assert mailbox.pushes[-1].status == 200
    await gmail.work()
    assert await gmail.outcomes() == ["opened"]
    (case,) = await gmail.cases()
    found = await gmail.case(case["id"])
    assert found["title"] == "Printer on fire"
    assert found["description"] == "It smokes.\nPlease help."
    assert found["customer"]["email"] == "ann@example.com"
    assert found["customer"]["name"] == "Ann Smith"
    assert found["channel"] == "gmail"
    # Each message was fetched once, as raw mail; the old mail was never imported.
    assert [call.path.rsplit("/", 1)[-1] for call in mailbox.calls_to("messages.get")] == [
        first.id
    ]
    assert mailbox.calls_to("messages.get")[0].query["format"] == "raw"

    await mailbox.deliver(mail("Re: Printer on fire", "Still smoking"), thread_of=first.id)
    await gmail.work()
    assert await gmail.outcomes() == ["opened", "commented"]
    (comment,) = await gmail.comments(case["id"])
    assert comment["body"] == "Still smoking"
    assert comment["thread_id"] == first.thread_id
    assert len(await gmail.cases()) == 1

"""Gmail as a channel, end to end: the built-in connector through Pub/Sub pushes at the hook,
the inbox worker, the resync that reads users.history.list, the enricher (messages.get,
format=full), the threading rules and reply delivery with messages.send, against a local Gmail
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
    # Each message was fetched once, as its MIME tree; the old mail was never imported.
    assert [call.path.rsplit("/", 1)[-1] for call in mailbox.calls_to("messages.get")] == [first.id]
    assert mailbox.calls_to("messages.get")[0].query["format"] == "full"

    await mailbox.deliver(mail("Re: Printer on fire", "Still smoking"), thread_of=first.id)
    await gmail.work()
    assert await gmail.outcomes() == ["opened", "commented"]
    (comment,) = await gmail.comments(case["id"])
    assert comment["body"] == "Still smoking"
    assert comment["thread_id"] == first.thread_id
    assert len(await gmail.cases()) == 1


async def test_an_agents_comment_goes_out_in_the_thread_and_a_note_does_not(
    gmail: GmailDesk,
) -> None:
    mailbox = gmail.gmail
    first = await mailbox.deliver(
        mail("Printer on fire", "It smokes.", message_id="m1@mail.example")
    )
    await mailbox.deliver(
        mail(
            "Re: Printer on fire",
            "Still smoking",
            message_id="m2@mail.example",
            in_reply_to="m1@mail.example",
            references=["m1@mail.example"],
        ),
        thread_of=first.id,
    )
    await gmail.work()
    (case,) = await gmail.cases()
    comment = await gmail.reply(case["id"], "Pull the plug, then wait.")
    assert comment["delivery"]["status"] == "pending"
    note = await gmail.reply(case["id"], "Internal: the vendor again", public=False)
    assert note["delivery"] is None
    assert await gmail.send_replies() == 1

    (body,) = mailbox.sent
    assert body["threadId"] == first.thread_id
    (sent,) = mailbox.sent_messages()
    assert sent["To"] == "Ann Smith <ann@example.com>"
    assert sent["From"] == f"Example Support <{ADDRESS}>"
    assert sent["Subject"] == f"Re: Printer on fire [#{case['number']}]"
    own_id = sent["Message-ID"]
    assert own_id.startswith("<casedesk.")
    assert own_id.endswith(">")
    assert own_id not in ("<m1@mail.example>", "<m2@mail.example>")
    assert sent["In-Reply-To"] == "<m2@mail.example>"
    assert sent["References"] == "<m1@mail.example> <m2@mail.example>"
    text = sent.get_body(preferencelist=("plain",))
    assert text is not None
    assert text.get_content().strip() == "Pull the plug, then wait."
    assert "vendor" not in str(mailbox.sent)
    (stored,) = [s for s in mailbox.messages.values() if "SENT" in s.labels]
    shown = {c["id"]: c for c in await gmail.comments(case["id"])}
    assert shown[comment["id"]]["delivery"]["status"] == "sent"
    assert shown[comment["id"]]["delivery"]["provider_id"] == stored.id

    # The history now holds casedesk's sent reply: the next push brings it, never a comment.
    await mailbox.deliver(
        mail(
            "Re: Printer on fire",
            "Unplugged, thanks",
            in_reply_to=own_id.strip("<>"),
            references=["m1@mail.example", "m2@mail.example", own_id.strip("<>")],
        ),
        thread_of=first.id,
    )
    await gmail.work()
    assert await gmail.outcomes() == ["opened", "commented", "own", "commented"]
    bodies = [c["body"] for c in await gmail.comments(case["id"])]
    assert bodies == [
        "Still smoking",
        "Pull the plug, then wait.",
        "Internal: the vendor again",
        "Unplugged, thanks",
    ]
    assert len(await gmail.cases()) == 1


async def test_a_mail_that_lost_its_threading_headers_threads_by_its_case_number(
    gmail: GmailDesk,
) -> None:
    mailbox = gmail.gmail
    await mailbox.deliver(mail("Printer on fire"))
    await gmail.work()
    (case,) = await gmail.cases()
    # A new Gmail thread, no In-Reply-To or References: only the subject's token is left.
    await mailbox.deliver(mail(f"Fwd: Re: Printer on fire [#{case['number']}]", "Any news?"))
    await gmail.work()
    assert await gmail.outcomes() == ["opened", "commented"]
    assert [c["body"] for c in await gmail.comments(case["id"])] == ["Any news?"]
    assert len(await gmail.cases()) == 1


async def test_an_out_of_office_reply_opens_nothing(gmail: GmailDesk) -> None:
    mailbox = gmail.gmail
    await mailbox.deliver(
        mail(
            "Out of office",
            "I am away until Monday.",
            headers=[("Auto-Submitted", "auto-replied"), ("X-Autoreply", "yes")],
        )
    )
    await gmail.work()
    assert await gmail.outcomes() == ["automatic"]
    assert await gmail.cases() == []


async def test_a_gb2312_mail_and_encoded_words_read_correctly(gmail: GmailDesk) -> None:
    mailbox = gmail.gmail
    subject = b"=?GB2312?B?" + base64.b64encode("打印机着火了".encode("gb2312")) + b"?="
    name = base64.b64encode("张伟".encode()).decode()
    await mailbox.deliver(
        mail(
            subject,
            "它在冒烟\uff0c请帮忙\u3002",
            sender=f"=?UTF-8?B?{name}?= <zw@example.cn>",
            charset="gb2312",
        )
    )
    latin = b"=?ISO-8859-1?Q?Caf=E9_ferm=E9?="
    await mailbox.deliver(mail(latin, "Le café est fermé.", charset="iso-8859-1"))
    await gmail.work()
    assert await gmail.outcomes() == ["opened", "opened"]
    found = {c["title"]: await gmail.case(c["id"]) for c in await gmail.cases()}
    assert set(found) == {"打印机着火了", "Café fermé"}
    assert found["打印机着火了"]["description"] == "它在冒烟\uff0c请帮忙\u3002"
    assert found["打印机着火了"]["customer"]["name"] == "张伟"
    assert found["Café fermé"]["description"] == "Le café est fermé."

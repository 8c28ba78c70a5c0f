"""A Gmail message's files, end to end against the local Gmail: a small part's bytes taken
from the message (``format=full``), a larger one fetched with ``messages.attachments.get``,
into the case the message opens or the comment a reply makes; an inline image keeps its
``Content-ID``; a file over the limit is refused without being fetched while the case and the
other files are kept; a download that fails with a 5xx is tried again with the message, and on
the last retry the message is kept and the file named as not fetched; another tenant gets 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest

from casedesk.bootstrap import Container
from casedesk.integrations.retry import RetryPolicy
from tests.support.cases import Desk
from tests.support.channel_files import (
    PNG,
    attachments,
    check_kept,
    check_other_tenant_cannot_read,
    history,
    pdf,
    receive_steps,
    received,
    small_limit,
)
from tests.support.connections import REDIRECT_URI
from tests.support.gmail import ADDRESS, ATTACHMENT_DATA_MAX, GmailDesk, gmail_server, mail
from tests.support.oauth_server import oauth_server


@pytest.fixture
async def gmail(desk: Desk, container: Container) -> AsyncIterator[GmailDesk]:
    async with oauth_server(REDIRECT_URI) as oauth, gmail_server(desk.http, oauth) as mailbox:
        connected = GmailDesk(desk, container, mailbox)
        await connected.connect()
        yield connected


def _mail(subject: str, *files: tuple[str, str, bytes], in_reply_to: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann Smith <ann@example.com>"
    message["To"] = ADDRESS
    message["Subject"] = subject
    if in_reply_to is not None:
        message["In-Reply-To"] = f"<{in_reply_to}>"
    message.set_content("See the files.")
    message.add_alternative('<p>See <img src="cid:logo@example.net"></p>', subtype="html")
    html = message.get_payload()[1]  # type: ignore[index]
    html.add_related(PNG, maintype="image", subtype="png", cid="<logo@example.net>")
    for filename, kind, content in files:
        maintype, subtype = kind.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


async def test_a_mail_with_files_opens_a_case_with_them(
    gmail: GmailDesk, desk: Desk, container: Container
) -> None:
    mailbox = gmail.gmail
    invoice = pdf(40_000)
    await mailbox.deliver(_mail("Invoice", ("Rechnung März 2026.pdf", "application/pdf", invoice)))
    await gmail.work()
    assert await gmail.outcomes() == ["opened"]
    (case,) = await gmail.cases()
    assert (await gmail.case(case["id"]))["description"] == "See the files."
    files = await attachments(desk, case["id"])
    assert set(files) == {"Rechnung März 2026.pdf", "attachment"}
    kept = files["Rechnung März 2026.pdf"]
    assert kept["content_type"] == "application/pdf"  # sniffed
    assert kept["comment_id"] is None
    await check_kept(desk, container, kept, invoice)
    # The large file by attachments.get; the small inline image from the message itself.
    (fetched,) = mailbox.calls_to("attachments.get")
    assert len(PNG) <= ATTACHMENT_DATA_MAX < len(invoice)
    assert fetched.path.startswith(f"/gmail/v1/users/me/messages/{case['external_ref']}/")
    (image,) = [f for f in files.values() if f["content_id"] == "logo@example.net"]
    assert image["content_type"] == "image/png"
    assert image["inline"] is True
    await check_kept(desk, container, image, PNG)
    await check_other_tenant_cannot_read(desk, container, kept)


async def test_a_reply_s_files_are_on_its_comment(gmail: GmailDesk, desk: Desk) -> None:
    mailbox = gmail.gmail
    first = await mailbox.deliver(mail("Printer", "It smokes.", message_id="p1@mail.example"))
    await gmail.work()
    photo = pdf(3000)
    reply = _mail(
        "Re: Printer", ("photo.pdf", "application/pdf", photo), in_reply_to="p1@mail.example"
    )
    await mailbox.deliver(reply, thread_of=first.id)
    await gmail.work()
    assert await gmail.outcomes() == ["opened", "commented"]
    (case,) = await gmail.cases()
    (comment,) = await gmail.comments(case["id"])
    files = await attachments(desk, case["id"])
    assert {f["comment_id"] for f in files.values()} == {comment["id"]}
    assert "photo.pdf" in files


async def test_a_file_over_the_limit_is_refused_unfetched_and_the_rest_is_kept(
    gmail: GmailDesk, desk: Desk, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_limit(monkeypatch, container, 64 * 1024)
    mailbox = gmail.gmail
    small = pdf(5000)
    await mailbox.deliver(
        _mail(
            "Two files",
            ("huge.pdf", "application/pdf", pdf(200 * 1024)),
            ("small.pdf", "application/pdf", small),
        )
    )
    await gmail.work()
    assert await gmail.outcomes() == ["opened"]
    (case,) = await gmail.cases()
    assert (await gmail.case(case["id"]))["description"] == "See the files."
    files = await attachments(desk, case["id"])
    assert "huge.pdf" not in files
    await check_kept(desk, container, files["small.pdf"], small)
    # Gmail said how large it is: it was never downloaded.
    assert len(mailbox.calls_to("attachments.get")) == 1
    (refused,) = [f for f in await received(gmail) if "refused" in f]
    assert refused["filename"] == "huge.pdf"
    assert "(64 KiB)" in refused["refused"]  # the limit, named
    assert "(200 KiB)" in refused["refused"]  # and the size Gmail gave
    shown = await history(desk, case["id"])
    assert "huge.pdf" in shown
    assert "too_large" in shown


async def test_a_download_that_fails_for_now_is_tried_again_with_the_message(
    gmail: GmailDesk, desk: Desk, container: Container
) -> None:
    mailbox = gmail.gmail
    mailbox.attachment_failures.extend([500])  # not retried by the hub: the run is
    invoice = pdf(20_000)
    await mailbox.deliver(_mail("Invoice", ("invoice.pdf", "application/pdf", invoice)))
    await gmail.work()
    (execution,) = await gmail.executions()
    assert (execution.status, execution.attempts) == ("succeeded", 2)
    failed, done = await receive_steps(gmail)
    assert failed["status"] == "failed"
    assert "invoice.pdf: not fetched: the service answered 500" in failed["error"]
    assert done["output"]["outcome"] == "opened"
    (case,) = await gmail.cases()
    await check_kept(desk, container, (await attachments(desk, case["id"]))["invoice.pdf"], invoice)
    assert len(await gmail.cases()) == 1


async def test_on_the_last_retry_the_message_is_kept_and_the_file_named_as_not_fetched(
    gmail: GmailDesk, desk: Desk, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(container.hub, "default_retry", RetryPolicy(max_attempts=1))
    mailbox = gmail.gmail
    mailbox.attachment_failures.extend([503] * 50)
    await mailbox.deliver(_mail("Invoice", ("invoice.pdf", "application/pdf", pdf(20_000))))
    await gmail.work()
    (case,) = await gmail.cases()
    files = await attachments(desk, case["id"])
    assert "invoice.pdf" not in files
    assert "attachment" in files  # the inline image came with the message
    shown = await history(desk, case["id"])
    assert "invoice.pdf" in shown
    assert "not fetched: the service answered 503" in shown
    (noted,) = [f for f in await received(gmail) if "not_fetched" in f]
    assert noted["filename"] == "invoice.pdf"
    (execution,) = await gmail.executions()
    assert (execution.status, execution.attempts) == ("succeeded", 6)  # every retry was made

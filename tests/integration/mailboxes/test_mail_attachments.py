"""A mail's files, from a real dovecot into the attachment store: on the case a mail opens,
on the comment a reply makes; an inline ``cid:`` image kept as one; a file over the limit
refused while the mail and its other files are kept."""

from __future__ import annotations

import os
import uuid
from email.message import EmailMessage
from typing import Any

from tests.support.dovecot import message
from tests.support.mailboxes import MailDesk

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + os.urandom(64)


def _mail(subject: str, *files: tuple[str, str, bytes], **headers: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Carol Customer <carol@example.net>"
    mail["To"] = "desk@example.test"
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@example.net>"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content("See the files.")
    mail.add_alternative('<p>See <img src="cid:logo@example.net"></p>', subtype="html")
    html = mail.get_payload()[1]
    html.add_related(PNG, maintype="image", subtype="png", cid="<logo@example.net>")
    for filename, kind, content in files:
        maintype, subtype = kind.split("/")
        mail.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return mail.as_bytes()


async def _attachments(mail_desk: MailDesk, case_id: str) -> list[dict[str, Any]]:
    listed = await mail_desk.http.get(
        f"/api/v1/cases/{case_id}/attachments", headers=mail_desk.headers
    )
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def test_a_new_mail_opens_one_case_with_its_files(mail_desk: MailDesk) -> None:
    await mail_desk.create()
    pdf = b"%PDF-1.7\n" + os.urandom(2000)
    mail_desk.append(_mail("Invoice and logo", ("invoice 2026.pdf", "application/pdf", pdf)))
    await mail_desk.poll()
    (case,) = await mail_desk.cases()
    files = {f["filename"]: f for f in await _attachments(mail_desk, case["id"])}
    assert set(files) >= {"invoice 2026.pdf"}
    assert files["invoice 2026.pdf"]["content_type"] == "application/pdf"
    assert files["invoice 2026.pdf"]["size"] == len(pdf)
    (image,) = [f for f in files.values() if f["content_id"] == "logo@example.net"]
    assert image["content_type"] == "image/png"
    assert image["inline"] is True
    body = await mail_desk.http.get(
        files["invoice 2026.pdf"]["content_url"], headers=mail_desk.headers
    )
    assert body.content == pdf


async def test_a_reply_s_file_is_on_its_comment(mail_desk: MailDesk) -> None:
    await mail_desk.create()
    first = f"<{uuid.uuid4().hex}@example.net>"
    mail_desk.append(message("Printer", message_id=first))
    await mail_desk.poll()
    (case,) = await mail_desk.cases()
    reply = _mail(
        "Re: Printer", ("photo.pdf", "application/pdf", b"%PDF-1.4\n1"), In_Reply_To=first
    )
    mail_desk.append(reply)
    run = await mail_desk.poll()
    (outcome,) = run["outcomes"]
    assert outcome["outcome"] == "commented"
    files = await _attachments(mail_desk, case["id"])
    assert {f["comment_id"] for f in files} == {outcome["comment_id"]}
    assert "photo.pdf" in {f["filename"] for f in files}


async def test_a_file_over_the_limit_is_refused_and_the_rest_is_kept(mail_desk: MailDesk) -> None:
    await mail_desk.create()
    big = b"%PDF-1.7\n" + os.urandom(30 * 1024 * 1024)
    small = b"%PDF-1.4\nsmall"
    raw = _mail(
        "Two files",
        ("huge.pdf", "application/pdf", big),
        ("small.pdf", "application/pdf", small),
    )
    mail_desk.append(raw)
    run = await mail_desk.poll()
    (outcome,) = run["outcomes"]
    assert outcome["outcome"] == "opened"
    (refused,) = [a for a in outcome["attachments"] if "refused" in a]
    assert refused["filename"] == "huge.pdf"
    assert "(25 MiB)" in refused["refused"]  # the limit, named
    assert "(30 MiB)" in refused["refused"]
    (case,) = await mail_desk.cases()
    assert (await mail_desk.case(case["id"]))["description"] == "See the files."
    names = {f["filename"] for f in await _attachments(mail_desk, case["id"])}
    assert "small.pdf" in names
    assert "huge.pdf" not in names
    history = await mail_desk.http.get(
        f"/api/v1/cases/{case['id']}/history", headers=mail_desk.headers
    )
    assert "huge.pdf" in history.text

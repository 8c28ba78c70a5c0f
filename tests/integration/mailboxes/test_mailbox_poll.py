"""Mail in from an IMAP mailbox, against a real dovecot: polled by ``POST .../poll`` (the same
run the ``mailbox.poll`` job makes), received by the channel threading rules."""

from __future__ import annotations

import pytest

from tests.support.dovecot import message
from tests.support.mailboxes import MailDesk

BOUNCE = (
    "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
    "To: {to}\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Message-ID: <bounce-{n}@mx.example.net>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "The mail could not be delivered.\r\n"
    "--b\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mx.example.net\r\n"
    "\r\n"
    "Final-Recipient: rfc822; nobody@example.net\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "--b--\r\n"
)


async def test_a_new_mail_opens_one_case_and_a_reply_to_it_is_a_comment(
    mail_desk: MailDesk,
) -> None:
    await mail_desk.create()
    mail_desk.append(
        message("Printer on fire", body="It smokes.\r\nPlease help.", message_id="<m1@example.net>")
    )
    run = await mail_desk.poll()
    assert run["ok"], run
    assert [o["outcome"] for o in run["outcomes"]] == ["opened"]
    (case,) = await mail_desk.cases()
    found = await mail_desk.case(case["id"])
    assert found["title"] == "Printer on fire"
    assert found["description"] == "It smokes.\nPlease help."
    assert found["customer"]["email"] == "carol@example.net"
    assert found["customer"]["name"] == "Carol Customer"
    assert found["channel"] == "email"

    mail_desk.append(
        message(
            "Re: Printer on fire",
            body="Still smoking",
            headers={"In-Reply-To": "<m1@example.net>", "References": "<m1@example.net>"},
        )
    )
    run = await mail_desk.poll()
    assert [o["outcome"] for o in run["outcomes"]] == ["commented"]
    assert run["outcomes"][0]["case_id"] == case["id"]
    (comment,) = await mail_desk.comments(case["id"])
    assert comment["body"] == "Still smoking"
    assert comment["public"] is True

    # Nothing new: nothing fetched, nothing made.
    again = await mail_desk.poll()
    assert again["ok"]
    assert again["fetched"] == 0
    assert again["outcomes"] == []
    assert len(await mail_desk.cases()) == 1
    state = await mail_desk.read()
    assert state["last_uid"] == 2
    assert state["last_count"] == 0
    assert state["last_error"] is None
    assert state["last_poll_at"] is not None


@pytest.mark.parametrize("prefix", ["Fwd:", "Re:", "AW:", "SV:", "VS:", "回复:", "答复:"])
async def test_a_mail_that_lost_its_headers_threads_by_the_case_number(
    mail_desk: MailDesk, prefix: str
) -> None:
    await mail_desk.create()
    mail_desk.append(message("Invoice wrong"))
    await mail_desk.poll()
    (case,) = await mail_desk.cases()
    mail_desk.append(
        message(f"{prefix} Invoice wrong [#{case['number']}]", body="See below", message_id=None)
    )
    run = await mail_desk.poll()
    assert [o["outcome"] for o in run["outcomes"]] == ["commented"], run
    assert run["outcomes"][0]["case_id"] == case["id"]
    # Without the token, a prefixed subject alone threads nothing: it is a new case.
    mail_desk.append(message(f"{prefix} Invoice wrong", body="Another one"))
    run = await mail_desk.poll()
    assert [o["outcome"] for o in run["outcomes"]] == ["opened"]


async def test_an_out_of_office_and_a_bounce_open_nothing(mail_desk: MailDesk) -> None:
    await mail_desk.create()
    mail_desk.append(
        message("Out of office", body="Back Monday", headers={"Auto-Submitted": "auto-replied"})
    )
    mail_desk.append(BOUNCE.format(to=mail_desk.user, n=1).encode())
    run = await mail_desk.poll()
    assert run["ok"], run
    assert [o["outcome"] for o in run["outcomes"]] == ["automatic", "automatic"]
    assert await mail_desk.cases() == []
    assert (await mail_desk.read())["last_uid"] == 2


async def test_a_changed_uidvalidity_reads_the_folder_again_and_duplicates_nothing(
    mail_desk: MailDesk,
) -> None:
    await mail_desk.create()
    first, second = message("First"), message("Second", message_id=None)
    mail_desk.append(first)
    mail_desk.append(second)
    await mail_desk.poll()
    before = await mail_desk.read()
    assert len(await mail_desk.cases()) == 2

    mail_desk.dovecot.recreate("INBOX", user=mail_desk.user)
    mail_desk.append(first)
    mail_desk.append(second)
    mail_desk.append(message("Third"))
    run = await mail_desk.poll()
    assert run["ok"], run
    assert run["uidvalidity"] != before["uidvalidity"]
    assert [o["outcome"] for o in run["outcomes"]] == ["duplicate", "duplicate", "opened"]
    assert sorted(c["title"] for c in await mail_desk.cases()) == ["First", "Second", "Third"]
    after = await mail_desk.read()
    assert after["uidvalidity"] == run["uidvalidity"]
    assert after["last_uid"] == 3


async def test_a_mailbox_that_skips_existing_mail_takes_in_only_what_arrives_later(
    mail_desk: MailDesk,
) -> None:
    """An old shared mailbox has years of mail: "skip" opens no case for any of it, and
    mail that arrives after the first poll is taken in as usual."""
    mail_desk.append(message("Old one"))
    mail_desk.append(message("Old two"))
    created = await mail_desk.create(existing_mail="skip")
    assert created["existing_mail"] == "skip"
    run = await mail_desk.poll()
    assert run["ok"], run
    assert (run["fetched"], run["outcomes"]) == (0, [])
    assert (await mail_desk.read())["last_uid"] == 2
    assert await mail_desk.cases() == []

    new = message("New one")
    mail_desk.append(new)
    run = await mail_desk.poll()
    assert [o["outcome"] for o in run["outcomes"]] == ["opened"]
    assert [c["title"] for c in await mail_desk.cases()] == ["New one"]

    # A folder made again later is no first run: it is read again, duplicating nothing.
    mail_desk.dovecot.recreate("INBOX", user=mail_desk.user)
    mail_desk.append(new)
    mail_desk.append(message("Newer"))
    run = await mail_desk.poll()
    assert [o["outcome"] for o in run["outcomes"]] == ["duplicate", "opened"]
    assert sorted(c["title"] for c in await mail_desk.cases()) == ["New one", "Newer"]


async def test_a_mailbox_imports_existing_mail_by_default_and_refuses_an_unknown_choice(
    mail_desk: MailDesk,
) -> None:
    mail_desk.append(message("Old one"))
    refused = await mail_desk.http.post(
        "/api/v1/mailboxes",
        json=mail_desk.settings(existing_mail="later"),
        headers=mail_desk.headers,
    )
    assert refused.status_code == 422
    assert "existing_mail" in refused.text
    created = await mail_desk.create()
    assert created["existing_mail"] == "import"
    run = await mail_desk.poll()
    assert [o["outcome"] for o in run["outcomes"]] == ["opened"]


async def test_after_fetch_seen_marks_the_mail_seen_and_leave_does_not(
    mail_desk: MailDesk,
) -> None:
    await mail_desk.create(after_fetch="seen")
    mail_desk.append(message("Seen me"))
    await mail_desk.poll()
    assert mail_desk.dovecot.folder("INBOX", user=mail_desk.user) == [(1, "\\Seen")]

    other = MailDesk(mail_desk.desk, mail_desk.dovecot, mail_desk.dovecot.fresh_user())
    await other.create(name="Left alone")
    other.append(message("Leave me"))
    await other.poll()
    assert other.dovecot.folder("INBOX", user=other.user) == [(1, "")]


async def test_after_fetch_move_moves_the_mail_to_its_folder(mail_desk: MailDesk) -> None:
    mail_desk.dovecot.create("Done", user=mail_desk.user)
    await mail_desk.create(after_fetch="move", move_to="Done")
    mail_desk.append(message("Move me"))
    mail_desk.append(message("Me too"))
    run = await mail_desk.poll()
    assert run["ok"], run
    assert mail_desk.dovecot.folder("INBOX", user=mail_desk.user) == []
    assert len(mail_desk.dovecot.folder("Done", user=mail_desk.user)) == 2
    assert len(await mail_desk.cases()) == 2


async def test_a_move_to_a_missing_folder_is_the_run_s_error_and_the_mail_is_kept(
    mail_desk: MailDesk,
) -> None:
    await mail_desk.create(after_fetch="move", move_to="Nowhere")
    mail_desk.append(message("Stays"))
    run = await mail_desk.poll()
    assert run["ok"] is False
    assert "UID MOVE 1 Nowhere" in run["error"]
    assert "NO" in run["error"]
    assert len(await mail_desk.cases()) == 1  # taken in before the move was refused
    assert "Nowhere" in (await mail_desk.read())["last_error"]
    # The next run goes on after the cursor: the mail is not taken in twice.
    again = await mail_desk.poll()
    assert again["fetched"] == 0
    assert len(await mail_desk.cases()) == 1


async def test_a_mail_s_attachment_is_stored_on_its_case(mail_desk: MailDesk) -> None:
    await mail_desk.create()
    raw = (
        b"From: carol@example.net\r\nSubject: Scan\r\nMessage-ID: <scan@example.net>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="scan.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )
    mail_desk.append(raw)
    run = await mail_desk.poll()
    (outcome,) = run["outcomes"]
    (kept,) = outcome["attachments"]
    assert {k: kept[k] for k in ("filename", "content_type", "size")} == {
        "filename": "scan.pdf",
        "content_type": "application/pdf",
        "size": 9,
    }
    (case,) = await mail_desk.cases()
    assert (await mail_desk.case(case["id"]))["description"] == "Attached."
    listed = await mail_desk.http.get(
        f"/api/v1/cases/{case['id']}/attachments", headers=mail_desk.headers
    )
    (stored,) = listed.json()["items"]
    assert stored["id"] == kept["id"]
    assert stored["comment_id"] is None
    content = await mail_desk.http.get(stored["content_url"], headers=mail_desk.headers)
    assert content.content == b"%PDF-1.4\n"


async def test_overlong_headers_are_cut_rather_than_the_mail_refused(mail_desk: MailDesk) -> None:
    await mail_desk.create()
    long_name = "Ann " + "Very" * 80
    mail_desk.append(message("S" * 1200, sender=f'"{long_name}" <ann@example.net>'))
    run = await mail_desk.poll()
    assert [o["outcome"] for o in run["outcomes"]] == ["opened"], run
    (case,) = await mail_desk.cases()
    found = await mail_desk.case(case["id"])
    assert found["customer"]["email"] == "ann@example.net"
    assert found["customer"]["name"] == long_name[:200]
    assert found["title"] == "S" * 300

"""A Slack message's files, end to end against the local Slack: each downloaded from its
``url_private_download`` with the bot token (Slack redirects to the bytes, and answers a
sign-in page to anyone else), looked up with ``files.info`` first when the event names only its
id, into the case the message opens or the comment a reply makes; a file over the limit is
refused (unfetched when Slack gives its size, cut at the limit when it does not) while the case
and the other files are kept; a deleted file is named as not fetched; a 5xx is tried again with
the message; another tenant gets 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from casedesk.bootstrap import Container
from tests.integration.platform.test_slack import SlackDesk
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
from tests.support.slack import BOT_TOKEN, slack_server


@pytest.fixture
async def slack(desk: Desk, container: Container) -> AsyncIterator[SlackDesk]:
    async with slack_server(desk.http) as workspace:
        connected = SlackDesk(desk, container, workspace)
        await connected.connect()
        yield connected


async def test_a_message_with_files_opens_a_case_with_them(
    slack: SlackDesk, desk: Desk, container: Container
) -> None:
    workspace = slack.slack
    report = pdf(30_000)
    files = [
        workspace.add_file(slack.ann, "report.pdf", report, "application/pdf"),
        workspace.add_file(slack.ann, "screen.png", PNG, "image/png"),
    ]
    await workspace.post_files(slack.support, slack.ann, "Printer on fire, see the files", files)
    await slack.work()
    assert await slack.outcomes() == ["opened"]
    (case,) = await slack.cases()
    kept = await attachments(desk, case["id"])
    assert set(kept) == {"report.pdf", "screen.png"}
    assert kept["report.pdf"]["content_type"] == "application/pdf"
    assert kept["screen.png"]["content_type"] == "image/png"
    await check_kept(desk, container, kept["report.pdf"], report)
    await check_kept(desk, container, kept["screen.png"], PNG)
    # Every download carried the bot token and went through Slack's redirect.
    private = [d for d in workspace.downloads if d.method.startswith("/files-pri/")]
    assert len(private) == 2
    assert {d.headers["authorization"] for d in private} == {f"Bearer {BOT_TOKEN}"}
    assert len([d for d in workspace.downloads if d.method.startswith("/files-cdn/")]) == 2
    assert workspace.calls_to("files.info") == []  # the event held the files
    await check_other_tenant_cannot_read(desk, container, kept["report.pdf"])


async def test_a_file_the_event_names_by_id_is_looked_up_and_a_reply_s_is_on_its_comment(
    slack: SlackDesk, desk: Desk, container: Container
) -> None:
    workspace = slack.slack
    root = await workspace.post(slack.support, slack.ann, "Printer on fire")
    log = pdf(2000)
    file = workspace.add_file(slack.ann, "log.pdf", log, "application/pdf")
    await workspace.post_files(
        slack.support, slack.ann, "the log", [file], thread_ts=root["ts"], check_file_info=True
    )
    await slack.work()
    assert await slack.outcomes() == ["opened", "commented"]
    (looked_up,) = workspace.calls_to("files.info")
    assert looked_up.args["file"] == file["id"]
    (case,) = await slack.cases()
    (comment,) = await slack.comments(case["id"])
    kept = await attachments(desk, case["id"])
    assert kept["log.pdf"]["comment_id"] == comment["id"]
    await check_kept(desk, container, kept["log.pdf"], log)


async def test_a_shared_file_is_stored_on_the_message_it_made(slack: SlackDesk, desk: Desk) -> None:
    workspace = slack.slack
    await workspace.share_file(slack.support, slack.ann, "Smoke photo")
    await slack.work()
    assert await slack.outcomes() == ["opened"]
    (case,) = await slack.cases()
    kept = await attachments(desk, case["id"])
    assert kept["smoke_photo.png"]["content_type"] == "image/png"
    assert kept["smoke_photo.png"]["size"] == 5120


async def test_files_over_the_limit_are_refused_and_the_rest_is_kept(
    slack: SlackDesk, desk: Desk, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_limit(monkeypatch, container, 64 * 1024)
    workspace = slack.slack
    small = pdf(4000)
    stated = workspace.add_file(slack.ann, "stated.pdf", pdf(100 * 1024), "application/pdf")
    unstated = workspace.add_file(slack.ann, "unstated.pdf", pdf(100 * 1024), "application/pdf")
    del unstated["size"]  # Slack did not say: the download is cut at the limit
    files = [stated, unstated, workspace.add_file(slack.ann, "small.pdf", small, "application/pdf")]
    await workspace.post_files(slack.support, slack.ann, "Three files", files)
    await slack.work()
    assert await slack.outcomes() == ["opened"]
    (case,) = await slack.cases()
    assert (await slack.case(case["id"]))["description"].startswith("Three files")
    kept = await attachments(desk, case["id"])
    assert set(kept) == {"small.pdf"}
    await check_kept(desk, container, kept["small.pdf"], small)
    refused = {f["filename"]: f["refused"] for f in await received(slack) if "refused" in f}
    assert set(refused) == {"stated.pdf", "unstated.pdf"}
    assert all("(64 KiB)" in says for says in refused.values())
    # The stated one was never asked for.
    asked = [d.method for d in workspace.downloads if d.method.startswith("/files-pri/")]
    assert not any(stated["id"] in path for path in asked)
    shown = await history(desk, case["id"])
    assert "stated.pdf" in shown
    assert "unstated.pdf" in shown


async def test_a_deleted_file_is_named_as_not_fetched_and_the_message_kept(
    slack: SlackDesk, desk: Desk
) -> None:
    workspace = slack.slack
    gone = workspace.add_file(slack.ann, "gone.pdf", pdf(1000), "application/pdf")
    looked_up = workspace.add_file(slack.ann, "looked.pdf", pdf(1000), "application/pdf")
    here = workspace.add_file(slack.ann, "here.pdf", pdf(1000), "application/pdf")
    workspace.delete_file(gone["id"])
    workspace.delete_file(looked_up["id"])
    await workspace.post_files(slack.support, slack.ann, "Files", [gone, here])
    await workspace.post_files(slack.support, slack.ann, "More", [looked_up], check_file_info=True)
    await slack.work()
    assert await slack.outcomes() == ["opened", "opened"]
    first, second = sorted(await slack.cases(), key=lambda c: c["number"])
    assert set(await attachments(desk, first["id"])) == {"here.pdf"}
    shown = await history(desk, first["id"])
    assert "gone.pdf" in shown
    assert "gone at the source (404)" in shown
    assert "not fetched: file_not_found" in await history(desk, second["id"])


async def test_a_file_slack_will_not_give_the_token_is_named_and_not_kept_as_a_page(
    slack: SlackDesk, desk: Desk
) -> None:
    workspace = slack.slack
    workspace.files_read = False  # the app was installed without files:read
    file = workspace.add_file(slack.ann, "secret.pdf", pdf(1000), "application/pdf")
    await workspace.post_files(slack.support, slack.ann, "Files", [file])
    await slack.work()
    assert await slack.outcomes() == ["opened"]
    (case,) = await slack.cases()
    assert await attachments(desk, case["id"]) == {}
    (noted,) = await received(slack)
    assert noted["filename"] == "secret.pdf"
    assert "a web page" in noted["not_fetched"]
    assert "secret.pdf" in await history(desk, case["id"])


async def test_a_download_that_fails_for_now_is_tried_again_with_the_message(
    slack: SlackDesk, desk: Desk, container: Container
) -> None:
    workspace = slack.slack
    workspace.fail_downloads(500)
    report = pdf(3000)
    file = workspace.add_file(slack.ann, "report.pdf", report, "application/pdf")
    await workspace.post_files(slack.support, slack.ann, "Report", [file])
    await slack.work()
    failed, done = await receive_steps(slack)
    assert failed["status"] == "failed"
    assert "report.pdf: not fetched: the service answered 500" in failed["error"]
    assert done["output"]["outcome"] == "opened"
    (case,) = await slack.cases()
    await check_kept(desk, container, (await attachments(desk, case["id"]))["report.pdf"], report)


async def test_a_message_that_comes_again_does_not_download_its_files_again(
    slack: SlackDesk, desk: Desk
) -> None:
    workspace = slack.slack
    file = workspace.add_file(slack.ann, "report.pdf", pdf(2000), "application/pdf")
    message = await workspace.post_files(slack.support, slack.ann, "<@U0CASEBOT> report", [file])
    # Slack sends the app_mention of the same message too.
    mention = message | {"type": "app_mention", "channel": slack.support}
    mention.pop("subtype")
    await workspace.send(mention)
    await slack.work()
    assert await slack.outcomes() == ["opened", "duplicate"]
    assert len([d for d in workspace.downloads if d.method.startswith("/files-pri/")]) == 1
    (case,) = await slack.cases()
    assert set(await attachments(desk, case["id"])) == {"report.pdf"}

"""IMAP IDLE: a mailbox waiting in IDLE has its poll made due as soon as dovecot tells of new
mail; the worker's loop starts a wait per enabled mailbox and ends it with the mailbox."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from casedesk.activities.mailboxes import poll_key
from casedesk.bootstrap import Container
from casedesk.kit.clock import utcnow
from casedesk.platform.mailbox_idle import MailboxWatcher
from tests.support.dovecot import message
from tests.support.mailboxes import MailDesk


async def _due_in(container: Container, tenant_id: uuid.UUID, mailbox_id: uuid.UUID) -> timedelta:
    async with container.unit_of_work(tenant_id) as uow:
        job = await uow.jobs.find(poll_key(mailbox_id))
    assert job is not None
    return job.due_at - utcnow()


async def _until(check, seconds: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_new_mail_told_by_idle_makes_the_poll_due_now(
    mail_desk: MailDesk, container: Container
) -> None:
    tenant_id = mail_desk.desk.tenant.id
    created = await mail_desk.create(poll_seconds=3600)
    mailbox_id = uuid.UUID(created["id"])
    await mail_desk.poll()  # the next poll is an hour away
    assert await _due_in(container, tenant_id, mailbox_id) > timedelta(minutes=50)

    watcher = MailboxWatcher(container.database, container.box, idle_seconds=60)
    watching = asyncio.create_task(watcher.watch(tenant_id, mailbox_id))
    try:

        async def idling() -> bool:
            return mailbox_id in watcher.idling

        await _until(idling)
        await asyncio.sleep(0.3)  # IDLE acknowledged by the server
        await asyncio.to_thread(mail_desk.append, message("Told by IDLE"))

        async def due() -> bool:
            return await _due_in(container, tenant_id, mailbox_id) <= timedelta(0)

        await _until(due)
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    run = await mail_desk.poll()
    assert [o["outcome"] for o in run["outcomes"]] == ["opened"]


async def test_the_worker_loop_waits_on_enabled_mailboxes_only(
    mail_desk: MailDesk, container: Container
) -> None:
    created = await mail_desk.create()
    mailbox_id = uuid.UUID(created["id"])
    watcher = MailboxWatcher(
        container.database, container.box, refresh_seconds=0.2, idle_seconds=60
    )
    stop = asyncio.Event()
    loop = asyncio.create_task(watcher.run(stop))
    try:

        async def idling() -> bool:
            return mailbox_id in watcher.idling

        await _until(idling)
        disabled = await mail_desk.http.patch(
            f"/api/v1/mailboxes/{created['id']}", json={"enabled": False}, headers=mail_desk.headers
        )
        assert disabled.status_code == 200

        async def stopped() -> bool:
            return mailbox_id not in watcher.idling

        await _until(stopped)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 30)


async def test_one_worker_of_several_waits_in_idle_and_another_takes_over_when_it_stops(
    mail_desk: MailDesk, container: Container
) -> None:
    """Each worker waited in IDLE on every mailbox (a connection per mailbox per worker, and
    some servers allow a handful per account): one holds the watch, the others stand by."""
    created = await mail_desk.create()
    mailbox_id = uuid.UUID(created["id"])
    first, second = (
        MailboxWatcher(container.database, container.box, refresh_seconds=0.2, idle_seconds=60)
        for _ in range(2)
    )
    stops = asyncio.Event(), asyncio.Event()
    loops = [asyncio.create_task(w.run(s)) for w, s in zip((first, second), stops, strict=True)]
    try:

        async def one_idles() -> bool:
            return mailbox_id in first.idling or mailbox_id in second.idling

        await _until(one_idles)
        await asyncio.sleep(1.0)  # several refreshes: the other has not started a wait
        watching, standing = (first, second) if mailbox_id in first.idling else (second, first)
        assert mailbox_id not in standing.idling
        stops[(first, second).index(watching)].set()
        await asyncio.wait_for(loops[(first, second).index(watching)], 30)

        async def other_idles() -> bool:
            return mailbox_id in standing.idling

        await _until(other_idles)
    finally:
        for stop in stops:
            stop.set()
        await asyncio.wait_for(asyncio.gather(*loops, return_exceptions=True), 30)

"""IMAP IDLE: new mail polled as soon as the server tells of it, polling as the fallback.

``MailboxWatcher.run`` is a long-lived loop of the worker. One worker of a deployment at a
time watches (it holds the lease ``casedesk.mailbox-idle``; the others stand by and take over
within ``refresh_seconds`` when it stops), so a mailbox has one IDLE connection however many
workers run. Every ``refresh_seconds`` the holder reads every tenant's enabled mailboxes and
keeps one task per mailbox (started again when the
mailbox changes, ended when it is disabled or deleted). A task logs in, selects the folder
and waits in ``IDLE`` (ended and started again every ``idle_seconds``, as RFC 2177 asks);
when the server tells of new mail (``EXISTS``) it makes the mailbox's ``mailbox.poll`` job due
now, and the poll does the rest. A server without IDLE leaves the mailbox to its polling; a
lost connection or a refused login waits (doubling up to ten minutes) and tries again, and
the polls go on meanwhile, so IDLE only ever makes mail come in sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime

from casedesk.activities import mailboxes
from casedesk.integrations import imap
from casedesk.integrations.imap import ImapAccount, ImapError
from casedesk.kit.aio import pause
from casedesk.kit.crypto import SecretBox, SecretUnreadable
from casedesk.kit.errors import NotFound
from casedesk.kit.logging import get_logger
from casedesk.store.database import Database
from casedesk.store.leases import Lease
from casedesk.store.unit_of_work import UnitOfWork

RETRY_MAX_SECONDS = 600.0
LEASE = "casedesk.mailbox-idle"
log = get_logger(__name__)


async def _end(tasks: dict[uuid.UUID, tuple[datetime, asyncio.Task[None]]]) -> None:
    for _, task in tasks.values():
        task.cancel()
    for _, task in tasks.values():
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    tasks.clear()


class MailboxWatcher:
    def __init__(
        self,
        database: Database,
        box: SecretBox,
        *,
        allow_plain: bool = False,
        timeout: float = 30.0,
        refresh_seconds: float = 60.0,
        idle_seconds: float = 29 * 60,
    ) -> None:
        self.database, self.box = database, box
        self.allow_plain, self.timeout = allow_plain, timeout
        self.refresh_seconds, self.idle_seconds = refresh_seconds, idle_seconds
        self.idling: set[uuid.UUID] = set()
        """The mailboxes waiting in IDLE right now."""
        self.lease = Lease(database, LEASE)

    async def run(self, stop: asyncio.Event) -> None:
        tasks: dict[uuid.UUID, tuple[datetime, asyncio.Task[None]]] = {}
        try:
            while not stop.is_set():
                if not await self._hold():
                    await _end(tasks)  # another worker watches now
                    await pause(stop, self.refresh_seconds)
                    continue
                try:
                    async with UnitOfWork(self.database) as uow:
                        wanted = await uow.mailboxes.enabled_everywhere()
                except Exception:  # a database hiccup: the tasks keep going, look again later
                    log.exception("reading the mailboxes to watch failed")
                    await pause(stop, self.refresh_seconds)
                    continue
                seen = {mailbox.id: mailbox for mailbox in wanted}
                for mailbox_id, (updated_at, task) in list(tasks.items()):
                    found = seen.get(mailbox_id)
                    failed = task.done() and (task.cancelled() or task.exception() is not None)
                    if found is None or found.updated_at != updated_at or failed:
                        task.cancel()
                        del tasks[mailbox_id]
                for mailbox in wanted:
                    if mailbox.id in tasks:
                        continue
                    watch = self.watch(mailbox.tenant_id, mailbox.id)
                    task = asyncio.create_task(watch, name=f"casedesk-idle-{mailbox.id}")
                    tasks[mailbox.id] = (mailbox.updated_at, task)
                await pause(stop, self.refresh_seconds)
        finally:
            await _end(tasks)
            with contextlib.suppress(Exception):
                await self.lease.release()

    async def _hold(self) -> bool:
        """Whether this worker is the one that watches: it holds the lease, or takes it."""
        try:
            if self.lease.held and await self.lease.alive():
                return True
            return await self.lease.try_acquire()
        except Exception:  # a database hiccup: stand by, and try again at the next refresh
            log.exception("taking the mailbox IDLE lease failed")
            return False

    async def _account(
        self, tenant_id: uuid.UUID, mailbox_id: uuid.UUID
    ) -> tuple[ImapAccount, str]:
        async with UnitOfWork(self.database, tenant_id) as uow:
            mailbox = await mailboxes.find_mailbox(uow, mailbox_id)
            account = mailboxes.account_of(
                mailbox, self.box, allow_plain=self.allow_plain, timeout=self.timeout
            )
            return account, mailbox.folder

    async def watch(self, tenant_id: uuid.UUID, mailbox_id: uuid.UUID) -> None:
        """Wait in IDLE on one mailbox until cancelled (or its server has no IDLE)."""
        wait = 5.0
        while True:
            try:
                account, folder = await self._account(tenant_id, mailbox_id)
                async with imap.session(account) as opened:
                    if not opened.has("IDLE"):
                        log.info(
                            "mailbox server has no IDLE; polling only", mailbox_id=str(mailbox_id)
                        )
                        return
                    await opened.select(folder)
                    wait = 5.0
                    while True:
                        self.idling.add(mailbox_id)
                        if await opened.idle(self.idle_seconds):
                            await self.poll_now(tenant_id, mailbox_id)
            except NotFound:
                return  # deleted meanwhile
            except (ImapError, SecretUnreadable) as error:
                log.info("mailbox IDLE interrupted", mailbox_id=str(mailbox_id), error=str(error))
            finally:
                self.idling.discard(mailbox_id)
            await asyncio.sleep(wait)
            wait = min(wait * 2, RETRY_MAX_SECONDS)

    async def poll_now(self, tenant_id: uuid.UUID, mailbox_id: uuid.UUID) -> None:
        """Make the mailbox's poll job due now."""
        async with UnitOfWork(self.database, tenant_id) as uow:
            await uow.begin_write()
            mailbox = await uow.mailboxes.find(mailbox_id)
            if mailbox is None or not mailbox.enabled:
                return
            await mailboxes.plan_poll(uow, mailbox)
            await uow.commit()
        log.info("new mail told by IDLE; polling now", mailbox_id=str(mailbox_id))

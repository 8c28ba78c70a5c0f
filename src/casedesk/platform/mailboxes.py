"""Mailboxes polled over IMAP: the ``mailbox.poll`` job, and an admin's test of a mailbox.

IMAP is no HTTP source, so a mailbox is not a connector's trigger but a job kind of its own
beside ``trigger.poll``. One run of ``MailboxPoller.poll``:

1. reads the mailbox (nothing happens when it is gone or disabled) and opens its secret;
2. outside any transaction, logs in, selects the folder and learns its UIDVALIDITY; when
   that is not the cursor's (a first run, a folder made again) the cursor starts again at 0;
3. ``UID SEARCH`` for the UIDs after the cursor, fetched in batches; each message in a
   transaction of its own (``activities.mailboxes.take_in``): parsed, received on the
   ``email`` channel, the cursor moved past it;
4. after each batch, the mailbox's after-fetch action on the messages taken in: leave them,
   mark them ``\\Seen``, or move them to another folder;
5. records ``last_poll_at``, ``last_count`` and ``last_error`` and plans the next run: in
   ``poll_seconds``, or after a failure in ``poll_seconds`` doubled for each failure in a row,
   up to ``CASEDESK_POLL_MAX_BACKOFF_SECONDS``.

A crash between a fetch and its commit fetches the message again; a mail already received is
known by its Message-ID and makes nothing twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prometheus_client import Counter

from casedesk.activities import mailboxes
from casedesk.activities.add_attachments import Attacher
from casedesk.activities.base import ActivityContext, Operator
from casedesk.domain.extensions.registry import ExtensionRegistry
from casedesk.integrations import imap, smtp
from casedesk.integrations.imap import FETCH_BATCH, ImapAccount, ImapError, ImapSession
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox, SecretUnreadable
from casedesk.kit.errors import CasedeskError
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import new_trace
from casedesk.store.database import Database
from casedesk.store.jobs import PLANNED_AGAIN
from casedesk.store.models import Mailbox, ScheduledJob
from casedesk.store.unit_of_work import UnitOfWork

RUNS = Counter("casedesk_mailbox_polls_total", "Mailbox polling runs, by outcome", ["outcome"])
MAILS = Counter(
    "casedesk_mailbox_mails_total", "Mails taken in from mailboxes, by outcome", ["outcome"]
)
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Start:
    tenant_id: uuid.UUID
    mailbox_id: uuid.UUID
    account: ImapAccount
    folder: str
    after_fetch: str
    move_to: str | None
    skips_existing: bool
    """A first run (no cursor yet) that skips the mail already in the folder."""
    operator: Operator
    edition: str


@dataclass
class PollReport:
    ok: bool
    fetched: int = 0
    """Messages fetched from the server."""
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    """What became of each message taken in."""
    error: str | None = None
    uidvalidity: int | None = None
    last_uid: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "fetched": self.fetched,
            "taken": len(self.outcomes),
            "outcomes": self.outcomes,
            "error": self.error,
            "uidvalidity": self.uidvalidity,
            "last_uid": self.last_uid,
        }


class MailboxPoller:
    def __init__(
        self,
        database: Database,
        box: SecretBox,
        extensions: ExtensionRegistry,
        attacher: Attacher,
        *,
        allow_plain: bool = False,
        timeout: float = 30.0,
        max_backoff: timedelta = timedelta(hours=1),
    ) -> None:
        self.database, self.box, self.extensions = database, box, extensions
        self.attacher = attacher
        """Where the mails' files go (the blob store, within the attachment limits)."""
        self.allow_plain, self.timeout, self.max_backoff = allow_plain, timeout, max_backoff

    async def run_job(self, job: ScheduledJob) -> str | None:
        """``mailbox.poll``: one run; ``PLANNED_AGAIN`` when it planned the next one."""
        mailbox_id = uuid.UUID(str(job.payload["mailbox_id"]))
        report = await self.poll(job.tenant_id, mailbox_id)
        return None if report is None else PLANNED_AGAIN

    def _account(self, mailbox: Mailbox) -> ImapAccount:
        return mailboxes.account_of(
            mailbox, self.box, allow_plain=self.allow_plain, timeout=self.timeout
        )

    async def _start(self, tenant_id: uuid.UUID, mailbox_id: uuid.UUID) -> _Start | str | None:
        """What the run needs; a text when the mailbox cannot run (its secret is unreadable);
        None when it is gone or disabled."""
        async with UnitOfWork(self.database, tenant_id) as uow:
            mailbox = await uow.mailboxes.find(mailbox_id)
            if mailbox is None or not mailbox.enabled:
                return None
            tenant = await uow.tenants.get(tenant_id)
            try:
                account = self._account(mailbox)
            except SecretUnreadable as error:
                return str(error)
            return _Start(
                tenant_id,
                mailbox.id,
                account,
                mailbox.folder,
                mailbox.after_fetch,
                mailbox.move_to,
                mailbox.uidvalidity is None and mailbox.existing_mail == "skip",
                mailboxes.operator_of(mailbox),
                tenant.edition,
            )

    async def poll(self, tenant_id: uuid.UUID, mailbox_id: uuid.UUID) -> PollReport | None:
        """One run (see the module's description); None when the mailbox is gone or
        disabled (then no next run is planned)."""
        start = await self._start(tenant_id, mailbox_id)
        if start is None:
            RUNS.labels("skipped").inc()
            return None
        if isinstance(start, str):
            return await self._finish(tenant_id, mailbox_id, PollReport(False, error=start))
        report = PollReport(True)
        try:
            async with imap.session(start.account) as opened:
                await self._read(start, opened, report)
        except (ImapError, CasedeskError) as error:
            report.ok, report.error = False, str(error)[:4000]
        return await self._finish(tenant_id, mailbox_id, report)

    async def _read(self, start: _Start, opened: ImapSession, report: PollReport) -> None:
        state = await opened.select(start.folder)
        report.uidvalidity = state.uidvalidity
        newest = await _newest(opened, state) if start.skips_existing else None
        async with UnitOfWork(self.database, start.tenant_id) as uow:
            last = await mailboxes.restart_if_renumbered(
                uow, start.mailbox_id, state.uidvalidity, newest
            )
        report.last_uid = last
        uids = await opened.new_uids(last)
        for at in range(0, len(uids), FETCH_BATCH):
            fetched = await opened.fetch(uids[at : at + FETCH_BATCH])
            report.fetched += len(fetched)
            taken = []
            for mail in fetched:
                outcome = await self._take(start, state.uidvalidity, mail)
                if outcome is None:
                    continue
                MAILS.labels(str(outcome.get("outcome"))).inc()
                report.outcomes.append(outcome)
                report.last_uid = mail.uid
                taken.append(mail.uid)
            await self._after_fetch(start, opened, taken)

    async def _take(
        self, start: _Start, uidvalidity: int, mail: imap.FetchedMail
    ) -> dict[str, Any] | None:
        trace = new_trace()
        async with UnitOfWork(self.database, start.tenant_id) as uow:
            context = ActivityContext(
                uow=uow,
                operator=start.operator,
                tenant_id=start.tenant_id,
                edition=start.edition,
                extensions=self.extensions,
                trace=trace,
            )
            async with uow.one_transaction():
                outcome = await mailboxes.take_in(
                    context, start.mailbox_id, uidvalidity, mail, self.attacher
                )
            await uow.commit()
        return outcome

    async def _after_fetch(self, start: _Start, opened: ImapSession, uids: list[int]) -> None:
        if start.after_fetch == "seen":
            await opened.mark_seen(uids)
        elif start.after_fetch == "move" and start.move_to:
            await opened.move(uids, start.move_to)

    async def _finish(
        self, tenant_id: uuid.UUID, mailbox_id: uuid.UUID, report: PollReport
    ) -> PollReport | None:
        async with UnitOfWork(self.database, tenant_id) as uow:
            await uow.begin_write()
            mailbox = await uow.mailboxes.locked(mailbox_id)
            if mailbox is None:
                return None
            mailbox.last_poll_at = utcnow()
            mailbox.last_count = len(report.outcomes)
            mailbox.last_error = report.error
            mailbox.failures = 0 if report.ok else mailbox.failures + 1
            wait = timedelta(seconds=mailbox.poll_seconds)
            if not report.ok:
                wait = min(wait * 2 ** min(mailbox.failures, 16), self.max_backoff)
            if mailbox.enabled:
                await mailboxes.plan_poll(uow, mailbox, after_seconds=wait.total_seconds())
            await uow.commit()
        RUNS.labels("ok" if report.ok else "failed").inc()
        if not report.ok:
            log.warning("mailbox poll failed", mailbox_id=str(mailbox_id), error=report.error)
        return report

    async def test(self, tenant_id: uuid.UUID, mailbox_id: uuid.UUID) -> dict[str, Any]:
        """Connect, log in and select the folder, and log in to the outgoing server when the
        mailbox has one: what the servers said, or their refusals."""
        async with UnitOfWork(self.database, tenant_id) as uow:
            mailbox = await mailboxes.find_mailbox(uow, mailbox_id)
            folder = mailbox.folder
            try:
                account = self._account(mailbox)
                outgoing = mailboxes.smtp_server_of(mailbox, self.box, timeout=self.timeout)
            except SecretUnreadable as error:
                return {"ok": False, "error": str(error)}
        answer = await self._test_incoming(account, folder)
        answer["smtp"] = None if outgoing is None else await _test_outgoing(outgoing)
        return answer

    async def _test_incoming(self, account: ImapAccount, folder: str) -> dict[str, Any]:
        try:
            async with imap.session(account) as opened:
                state = await opened.select(folder)
        except ImapError as error:
            return {"ok": False, "error": str(error)}
        return {
            "ok": True,
            "error": None,
            "capabilities": state.capabilities,
            "folder": state.folder,
            "messages": state.exists,
            "uidvalidity": state.uidvalidity,
            "uidnext": state.uidnext,
        }


async def _newest(opened: ImapSession, state: imap.FolderState) -> int:
    """The highest UID in the folder: one less than its UIDNEXT, or, from a server that does
    not say it, the last of a search for every UID."""
    if state.uidnext is not None:
        return max(0, state.uidnext - 1)
    return max(await opened.new_uids(0), default=0)


async def _test_outgoing(server: smtp.SmtpServer) -> dict[str, Any]:
    try:
        said = await smtp.check(server)
    except smtp.SmtpFailed as failed:
        return {"ok": False, "error": failed.answer}
    return {"ok": True, "error": None, "greeting": said.greeting, "extensions": said.extensions}

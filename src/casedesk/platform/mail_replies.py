"""Agents' replies on cases that came by mail, sent through the mailbox's outgoing server.

A case from a mailbox (the ``email`` channel) has no connector to answer through: its latest
inbound mail names the mailbox it came by, and the reply goes out through that mailbox's
SMTP server, from the mailbox's address (with its ``from_name``), signed with its DKIM key
when it has one. Its Message-ID is on the mailbox's domain (``casedesk.<comment>@<domain>``,
the same on every attempt), and ``In-Reply-To`` / ``References`` come from the thread, so
the customer's mail client threads it and the customer's answer finds the case again.

The mail is the ``agent_reply`` template (the tenant's, or the built-in one) around the
agent's text, with the agent's name and the case's page on the portal.

A mailbox without an outgoing server, one that was deleted, or a case without a customer
address is a final failure that says so; an SMTP refusal is final or retried as
``integrations.smtp`` classifies it (5xx final, 4xx and the network retried).

The comment's files go with the reply as attachment parts (``platform.reply_files``: read
from the blob store, their total within the attachment limit or the delivery fails naming
them). Every submission, the reply's and the acknowledgement's, is one record in the action
trace (connector ``email``, the mailbox as the connection), under the job's trace context.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import IntegrityError

from casedesk.activities import mailboxes, notification_templates, notify_mail
from casedesk.activities.channels import Outgoing
from casedesk.domain import notifications
from casedesk.domain.channels import Reply
from casedesk.integrations import mail, smtp
from casedesk.kit.crypto import SecretBox
from casedesk.kit.errors import InvalidInput
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import TraceContext, parse_traceparent
from casedesk.platform import reply_files
from casedesk.platform.runner import StepFailed
from casedesk.store.blobs import BlobStore
from casedesk.store.database import Database
from casedesk.store.models import ChannelMessageRecord, Mailbox, ScheduledJob
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.traces.records import CallOrigin, TraceRecorder

CHANNEL = mailboxes.CHANNEL
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class MailSend:
    """Everything the send needs, read inside the job's transaction."""

    outgoing: Outgoing
    server: smtp.SmtpServer
    dkim_key: smtp.DkimKey | None
    raw: bytes
    sender: str
    recipients: list[str]
    trace: smtp.SendTrace | None = None
    """Where the submission's trace record goes (none: it is not traced)."""

    async def submit(self) -> smtp.Accepted:
        return await smtp.send(
            self.server,
            self.raw,
            sender=self.sender,
            recipients=self.recipients,
            dkim_key=self.dkim_key,
            trace=self.trace,
        )


def send_trace(
    recorder: TraceRecorder | None,
    uow: UnitOfWork,
    mailbox: Mailbox,
    *,
    action: str,
    parent: TraceContext | None,
    attempt: int,
) -> smtp.SendTrace | None:
    """How a submission through ``mailbox`` is traced: connector ``email``, the mailbox as
    the connection, a span under the job's ``parent`` context."""
    if recorder is None or uow.tenant_id is None:
        return None
    origin = CallOrigin(
        tenant_id=uow.tenant_id,
        connector=CHANNEL,
        connection_id=mailbox.id,
        action=action,
        execution_id=None,
    )
    return smtp.SendTrace(recorder, origin, parent, attempt)


class MailReplies:
    def __init__(
        self,
        box: SecretBox,
        *,
        timeout: float,
        base_url: str,
        blobs: BlobStore | None = None,
        files_max_bytes: int = 25 * 1024 * 1024,
        recorder: TraceRecorder | None = None,
    ) -> None:
        self.box = box
        self.timeout = timeout
        self.base_url = base_url
        """Where the portal is: the reply links the customer's case on it."""
        self.blobs = blobs
        """Where the comments' files are read from (none: a reply with files fails)."""
        self.files_max_bytes = files_max_bytes
        self.recorder = recorder

    async def prepare(
        self,
        uow: UnitOfWork,
        outgoing: Outgoing,
        *,
        parent: TraceContext | None = None,
        attempt: int = 1,
    ) -> MailSend:
        """The message as it will go out; raises ``StepFailed`` when it cannot. ``parent``:
        the job's trace context; ``attempt``: the how-many-th try of this reply it is."""
        found = outgoing.reply.reply.get("mailbox_id")
        mailbox = None if found is None else await uow.mailboxes.find(uuid.UUID(str(found)))
        if mailbox is None:
            raise StepFailed(
                "the mailbox this case's mail came by is gone; reply from another channel",
                final=True,
            )
        server = mailboxes.smtp_server_of(mailbox, self.box, timeout=self.timeout)
        if server is None:
            raise StepFailed(
                f"mailbox {mailbox.name!r} has no outgoing (SMTP) server; set one in its "
                "settings, then send the reply again",
                final=True,
            )
        recipients = [party.address for party in outgoing.reply.to if party.address]
        if not recipients:
            raise StepFailed("the case's customer has no mail address to reply to", final=True)
        # The comment's Message-ID, on the mailbox's domain rather than casedesk's host.
        local = str(outgoing.reply.message_id).rpartition("@")[0]
        message_id = f"{local}@{mailboxes.domain_of(mailbox.address)}"
        reply = await self._through_template(uow, outgoing.reply)
        reply = reply.model_copy(update={"message_id": message_id})
        outgoing = replace(outgoing, reply=reply)
        sender = {"address": mailbox.address, "name": mailbox.from_name}
        files = await self._files(reply)
        raw = mail.compose_reply(reply.model_dump(mode="json"), sender=sender, files=files)
        return MailSend(
            outgoing,
            server,
            mailboxes.dkim_key_of(mailbox, self.box),
            raw,
            mailbox.address,
            recipients,
            send_trace(self.recorder, uow, mailbox, action="reply", parent=parent, attempt=attempt),
        )

    async def _files(self, reply: Reply) -> list[mail.OutgoingFile]:
        if not reply.attachments:
            return []
        if self.blobs is None:
            raise StepFailed("this process cannot read the reply's files", final=False)
        return await reply_files.load(self.blobs, reply.attachments, limit=self.files_max_bytes)

    async def _through_template(self, uow: UnitOfWork, reply: Reply) -> Reply:
        """The agent's text as the ``agent_reply`` mail: its subject, text and HTML."""
        assert uow.tenant_id is not None
        tenant = await uow.tenants.get(uow.tenant_id)
        customer = reply.to[0] if reply.to else None
        number = int(reply.case["number"])
        values = {
            "desk": notify_mail.desk_of(tenant.name),
            "case": {"number": number, "title": reply.case.get("title")},
            "customer": {
                "name": None if customer is None else customer.name,
                "email": None if customer is None else customer.address,
            },
            "agent": {"name": reply.comment.get("author_name") or tenant.name},
            "comment": {"text": reply.text},
            "portal_url": notify_mail.portal_case_url(self.base_url, tenant.slug, number),
        }
        language = notify_mail.language_of_text(reply.text)
        rendered = await _render(uow, "agent_reply", values, language=language)
        return reply.model_copy(
            update={"subject": rendered.subject, "text": rendered.text, "html": rendered.html}
        )

    async def send(self, prepared: MailSend) -> str:
        """Submit the message; what identifies it at the server (its Message-ID)."""
        try:
            accepted = await prepared.submit()
        except smtp.SmtpFailed as failed:
            raise StepFailed(failed.answer, final=not failed.transient) from None
        if accepted.refused:  # sent to the others: the reply went out
            log.warning("reply refused for some recipients", refused=accepted.refused)
        return f"<{prepared.outgoing.reply.message_id}>"


class Acknowledger:
    """Runs ``mail.acknowledge`` jobs: the "case received" notification, in the customer's
    thread, from the mailbox the mail came to.

    It is automatic mail (``Auto-Submitted: auto-replied``), so auto-responders leave it
    alone; its Message-ID (``casedesk.ack.<case>@<domain>``) is recorded on the case, so a
    reply to it is a comment on the case, as the ``[#N]`` token in its subject also ensures.
    A transient SMTP failure raises (the job is tried again with backoff); a final one, or a
    mailbox that can no longer send, is logged and given up.
    """

    def __init__(
        self,
        database: Database,
        box: SecretBox,
        *,
        timeout: float,
        recorder: TraceRecorder | None = None,
    ) -> None:
        self.database, self.box, self.timeout = database, box, timeout
        self.recorder = recorder

    async def run_job(self, job: ScheduledJob) -> str | None:
        case_id = uuid.UUID(str(job.payload["case_id"]))
        language = str(job.payload.get("language") or notifications.DEFAULT_LANGUAGE)
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            prepared = await self._prepare(uow, job, case_id, language)
        if prepared is None:
            return None
        try:
            await prepared.submit()
        except smtp.SmtpFailed as failed:
            if failed.transient:
                raise
            log.warning("acknowledgement refused", case_id=str(case_id), error=failed.answer)
            return None
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            await _remember(uow, case_id, prepared)
            await uow.commit()
        return None

    async def _prepare(
        self, uow: UnitOfWork, job: ScheduledJob, case_id: uuid.UUID, language: str
    ) -> MailSend | None:
        mailbox = await uow.mailboxes.find(uuid.UUID(str(job.payload["mailbox_id"])))
        case = await uow.cases.find(case_id)
        server = (
            None
            if mailbox is None
            else mailboxes.smtp_server_of(mailbox, self.box, timeout=self.timeout)
        )
        if mailbox is None or case is None or server is None or case.customer_id is None:
            return None  # the mailbox, its outgoing server or the case went meanwhile
        customer = await uow.customers.find(case.customer_id)
        inbound = [r for r in await uow.channel_messages.of_case(case.id) if r.direction == "in"]
        if customer is None or not inbound:
            return None
        tenant = await uow.tenants.get(job.tenant_id)
        values = {
            "desk": {"name": tenant.name},
            "case": {"number": case.number, "title": case.title},
            "customer": {"name": customer.name, "email": customer.email},
            "portal_url": None,
        }
        mail_text = await _render(uow, "case_received", values, language=language)
        first = inbound[0]
        domain = mailboxes.domain_of(mailbox.address)
        reply = {
            "to": [{"address": customer.email, "name": customer.name}],
            "subject": mail_text.subject,
            "text": mail_text.text,
            "html": mail_text.html,
            "message_id": f"casedesk.ack.{case.id.hex}@{domain}",
            "in_reply_to": first.message_key,
            "references": [first.message_key] if first.message_key else [],
            "reply": dict(first.reply),
        }
        sender = {"address": mailbox.address, "name": mailbox.from_name}
        raw = mail.compose_reply(reply, sender=sender, automatic=True)
        outgoing = Outgoing(
            Reply.model_validate(reply | {"thread_id": first.thread_id, "case": {}, "comment": {}}),
            CHANNEL,
            None,
            first.thread_id,
        )
        return MailSend(
            outgoing,
            server,
            mailboxes.dkim_key_of(mailbox, self.box),
            raw,
            mailbox.address,
            [customer.email],
            send_trace(
                self.recorder,
                uow,
                mailbox,
                action="acknowledge",
                parent=parse_traceparent(job.traceparent),
                attempt=max(job.attempts, 1),
            ),
        )


async def _render(
    uow: UnitOfWork, kind: notifications.Kind, values: dict[str, Any], *, language: str
) -> notifications.RenderedMail:
    """``kind`` written with the tenant's own template in ``language``, else the built-in
    one. An own template that fails with these values (it passed its check with the sample
    values: a value it divides by is 0 here, a loop does too much) is logged and the
    built-in one is sent instead: a password reset or an answer to a customer is never lost
    to a template an admin got wrong."""
    template = await notification_templates.template_for(uow, kind, language)
    if template is not None:
        try:
            return notifications.render(kind, values, template, language=language)
        except InvalidInput as failed:
            log.warning(
                "the tenant's notification template failed; sent the built-in one",
                kind=kind,
                language=language,
                error=failed.detail,
            )
    return notifications.render(kind, values, language=language)


class Notifier:
    """Runs ``mail.notify`` jobs: one of the tenant's own mails (an invitation, a password
    reset, a portal sign-in link, "solved"), see ``activities.notify_mail``.

    It goes out through the mailbox the job names (the one a mail case came by, in the
    customer's thread) or else the tenant's chosen mailbox, from its address, with a
    Message-ID on its domain (the same on every attempt), ``Auto-Submitted`` as the kind's
    spec says, and signed with its DKIM key when it has one. A transient SMTP failure raises
    (the job is tried again with backoff); a final one, or a tenant that can no longer send,
    is logged with the server's answer and given up.
    """

    def __init__(self, database: Database, box: SecretBox, *, timeout: float) -> None:
        self.database, self.box, self.timeout = database, box, timeout

    async def run_job(self, job: ScheduledJob) -> str | None:
        kind: notifications.Kind = job.payload["kind"]
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            prepared = await self._prepare(uow, job, kind)
        if prepared is None:
            log.warning("mail not sent: the tenant has no mailbox to send it", kind=kind)
            return None
        try:
            accepted = await prepared.submit()
        except smtp.SmtpFailed as failed:
            if failed.transient:
                raise
            log.warning("mail refused", kind=kind, job_id=str(job.id), error=failed.answer)
            return None
        if accepted.refused:
            log.warning("mail refused", kind=kind, job_id=str(job.id), refused=accepted.refused)
        case_id = job.payload.get("case_id")
        if case_id and prepared.outgoing.reply.in_reply_to:  # in the thread of a mail case
            async with UnitOfWork(self.database, job.tenant_id) as uow:
                await uow.begin_write()
                await _remember(uow, uuid.UUID(str(case_id)), prepared)
                await uow.commit()
        return None

    async def _mailbox(self, uow: UnitOfWork, job: ScheduledJob) -> Mailbox | None:
        named = job.payload.get("mailbox_id")
        if named is None:
            return await notify_mail.sending_mailbox(uow)
        mailbox = await uow.mailboxes.find(uuid.UUID(str(named)))
        if mailbox is None or mailbox.smtp_host is None:
            return await notify_mail.sending_mailbox(uow)  # the case's mailbox went meanwhile
        return mailbox

    async def _prepare(
        self, uow: UnitOfWork, job: ScheduledJob, kind: notifications.Kind
    ) -> MailSend | None:
        mailbox = await self._mailbox(uow, job)
        server = (
            None
            if mailbox is None
            else mailboxes.smtp_server_of(mailbox, self.box, timeout=self.timeout)
        )
        if mailbox is None or server is None:
            return None
        language = str(job.payload.get("language") or notifications.DEFAULT_LANGUAGE)
        values: dict[str, Any] = dict(job.payload.get("values") or {})
        sealed = job.payload.get("link_sealed")
        if sealed:
            values["link"] = self.box.open(str(sealed))
        mail_text = await _render(uow, kind, values, language=language)
        to = job.payload["to"]
        domain = mailboxes.domain_of(mailbox.address)
        reply: dict[str, Any] = {
            "to": [to],
            "subject": mail_text.subject,
            "text": mail_text.text,
            "html": mail_text.html,
            "message_id": f"casedesk.{kind.replace('_', '-')}.{job.id.hex}@{domain}",
            "in_reply_to": None,
            "references": [],
            "reply": {},
        }
        thread_id = None
        case_id = job.payload.get("case_id")
        if job.payload.get("mailbox_id") == str(mailbox.id) and case_id:
            inbound = [
                r
                for r in await uow.channel_messages.of_case(uuid.UUID(str(case_id)))
                if r.direction == "in"
            ]
            if inbound:
                first, last = inbound[0], inbound[-1]
                thread_id = first.thread_id
                keys = [r.message_key for r in (first, last) if r.message_key]
                reply |= {
                    "in_reply_to": last.message_key,
                    "references": list(dict.fromkeys(keys)),
                    "reply": dict(first.reply),
                }
        sender = {"address": mailbox.address, "name": mailbox.from_name}
        raw = mail.compose_reply(reply, sender=sender, auto_submitted=mail_text.auto_submitted)
        outgoing = Outgoing(
            Reply.model_validate(reply | {"thread_id": thread_id, "case": {}, "comment": {}}),
            CHANNEL,
            None,
            thread_id,
        )
        return MailSend(
            outgoing,
            server,
            mailboxes.dkim_key_of(mailbox, self.box),
            raw,
            mailbox.address,
            [str(to["address"])],
        )


async def _remember(uow: UnitOfWork, case_id: uuid.UUID, sent: MailSend) -> None:
    """The acknowledgement as the case's outgoing mail: an answer to it threads."""
    reply = sent.outgoing.reply
    try:
        async with uow.session.begin_nested():
            uow.channel_messages.add(
                ChannelMessageRecord(
                    case_id=case_id,
                    comment_id=None,
                    channel=CHANNEL,
                    connection_id=None,
                    external_id=f"<{reply.message_id}>"[:255],
                    thread_id=sent.outgoing.thread_id,
                    message_key=reply.message_id,
                    direction="out",
                    subject=reply.subject,
                    reply=reply.reply,
                )
            )
    except IntegrityError:
        pass  # sent again after a lost commit: recorded already

"""Agents' replies on cases that came by mail, sent through the mailbox's outgoing server.

A case from a mailbox (the ``email`` channel) has no connector to answer through: its latest
inbound mail names the mailbox it came by, and the reply goes out through that mailbox's
SMTP server, from the mailbox's address (with its ``from_name``), signed with its DKIM key
when it has one. Its Message-ID is on the mailbox's domain (``casedesk.<comment>@<domain>``,
the same on every attempt), and ``In-Reply-To`` / ``References`` come from the thread, so
the customer's mail client threads it and the customer's answer finds the case again.

A mailbox without an outgoing server, one that was deleted, or a case without a customer
address is a final failure that says so; an SMTP refusal is final or retried as
``integrations.smtp`` classifies it (5xx final, 4xx and the network retried).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from casedesk.activities import mailboxes
from casedesk.activities.channels import Outgoing
from casedesk.integrations import mail, smtp
from casedesk.kit.crypto import SecretBox
from casedesk.kit.logging import get_logger
from casedesk.platform.runner import StepFailed
from casedesk.store.unit_of_work import UnitOfWork

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


class MailReplies:
    def __init__(self, box: SecretBox, *, timeout: float) -> None:
        self.box = box
        self.timeout = timeout

    async def prepare(self, uow: UnitOfWork, outgoing: Outgoing) -> MailSend:
        """The message as it will go out; raises ``StepFailed`` when it cannot."""
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
        comment_id = outgoing.reply.comment.get("id", "")
        message_id = (
            f"casedesk.{uuid.UUID(str(comment_id)).hex}@{mailboxes.domain_of(mailbox.address)}"
        )
        reply = outgoing.reply.model_copy(update={"message_id": message_id})
        outgoing = replace(outgoing, reply=reply)
        sender = {"address": mailbox.address, "name": mailbox.from_name}
        raw = mail.compose_reply(reply.model_dump(mode="json"), sender=sender)
        return MailSend(
            outgoing,
            server,
            mailboxes.dkim_key_of(mailbox, self.box),
            raw,
            mailbox.address,
            recipients,
        )

    async def send(self, prepared: MailSend) -> str:
        """Submit the message; what identifies it at the server (its Message-ID)."""
        try:
            accepted = await smtp.send(
                prepared.server,
                prepared.raw,
                sender=prepared.sender,
                recipients=prepared.recipients,
                dkim_key=prepared.dkim_key,
            )
        except smtp.SmtpFailed as failed:
            raise StepFailed(failed.answer, final=not failed.transient) from None
        if accepted.refused:  # sent to the others: the reply went out
            log.warning("reply refused for some recipients", refused=accepted.refused)
        return f"<{prepared.outgoing.reply.message_id}>"

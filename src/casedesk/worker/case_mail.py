"""Mail about a case that casedesk writes when the case changes: "solved", with the portal's
rating link, when a case closes.

The ``case-mail`` consumer group reacts to ``case.closed`` after the change committed, so
the agent who solves the case does not wait for a mail server. It plans one ``mail.notify``
job per solve, keyed by the event: an event delivered again finds its job and plans none
(and the group's processed-event record skips it first), while a case reopened and solved
again is a new event and a new mail. A case that came by mail is answered through its
mailbox, in the customer's thread; another goes through the tenant's chosen mailbox, when it
has one.
"""

from __future__ import annotations

import uuid

from casedesk.activities import notify_mail
from casedesk.activities.notify_mail import NOTIFY
from casedesk.kit.crypto import SecretBox
from casedesk.store.bus.base import Message
from casedesk.store.database import Database
from casedesk.store.models import Case
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.consumers import ConsumerGroup

GROUP = "case-mail"
TYPES = ("case.closed",)


def rating_url(base_url: str, workspace: str, number: int) -> str:
    """The portal's page of the case, at its rating form."""
    return notify_mail.portal_case_url(base_url, workspace, number) + "#rate"


class CaseMail:
    def __init__(self, database: Database, box: SecretBox, *, base_url: str) -> None:
        self.database, self.box, self.base_url = database, box, base_url

    def group(self) -> ConsumerGroup:
        return ConsumerGroup(GROUP, list(TYPES), self.handle)

    async def handle(self, message: Message, uow: UnitOfWork | None) -> None:
        assert uow is not None
        case = await uow.cases.find(uuid.UUID(message.subject or ""))
        if case is None or not case.closed or case.customer_id is None:
            return  # gone, or reopened before this ran: nothing solved to tell
        key = f"{NOTIFY}:case_solved:{message.id}"
        if await uow.jobs.find(key) is not None:
            return
        customer = await uow.customers.find(case.customer_id)
        if customer is None or not customer.email:
            return
        mailbox_id = await self._mailbox_of(uow, case)
        if mailbox_id is None and not await notify_mail.can_send(uow):
            return
        tenant = await uow.tenants.get(case.tenant_id)
        await notify_mail.plan_mail(
            uow,
            self.box,
            kind="case_solved",
            to=notify_mail.Recipient(customer.email, customer.name),
            language=notify_mail.language_of_text(case.title),
            values={
                "desk": notify_mail.desk_of(tenant.name),
                "case": {"number": case.number, "title": case.title},
                "customer": {"name": customer.name, "email": customer.email},
                "rating_url": rating_url(self.base_url, tenant.slug, case.number),
            },
            key=key,
            case_id=case.id,
            mailbox_id=mailbox_id,
        )

    async def _mailbox_of(self, uow: UnitOfWork, case: Case) -> uuid.UUID | None:
        """The mailbox the case's mail came by, when it is still there and can send."""
        for record in await uow.channel_messages.of_case(case.id):
            found = record.reply.get("mailbox_id") if record.direction == "in" else None
            if found is None:
                continue
            mailbox = await uow.mailboxes.find(uuid.UUID(str(found)))
            if mailbox is not None and mailbox.smtp_host is not None:
                return mailbox.id
        return None

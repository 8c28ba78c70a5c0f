"""The tenant's own mail: which mailbox sends it, and the ``mail.notify`` job that does.

A tenant can send mail when one of its mailboxes is chosen for it (``notifications``), is
enabled and has an outgoing (SMTP) server. Mail about a case that came by mail goes out
through that case's mailbox instead, in the customer's thread, as the acknowledgement does.

Every mail is a ``mail.notify`` job, planned in the transaction that made its reason (the
one-time link, the solved case), so a rolled-back change sends nothing and a committed one
is sent by a worker with the job runner's retries. A one-time link is sealed in the job's
payload with the app's ``SecretBox`` (as mailbox passwords are): the database keeps only the
hash of its token in clear, and the sealed copy is gone with the job's payload when the
housekeeping purges finished jobs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from casedesk.domain import notifications
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox
from casedesk.kit.tracing import trace_or_new
from casedesk.store.models import Mailbox
from casedesk.store.unit_of_work import UnitOfWork

NOTIFY = "mail.notify"
"""The job that sends one of the tenant's own mails."""


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    name: str | None = None


async def sending_mailbox(uow: UnitOfWork) -> Mailbox | None:
    """The mailbox the tenant's own mail goes out through; none when it cannot send mail."""
    mailbox = await uow.mailboxes.notifying()
    if mailbox is None or not mailbox.enabled or mailbox.smtp_host is None:
        return None
    return mailbox


async def can_send(uow: UnitOfWork) -> bool:
    """Whether the tenant has a mailbox chosen for its own mail that can send it."""
    return await sending_mailbox(uow) is not None


async def plan_mail(
    uow: UnitOfWork,
    box: SecretBox,
    *,
    kind: notifications.Kind,
    to: Recipient,
    language: str | None,
    values: Mapping[str, Any],
    link: str | None = None,
    key: str | None = None,
    case_id: uuid.UUID | None = None,
    mailbox_id: uuid.UUID | None = None,
) -> None:
    """In the caller's transaction: ``kind`` is mailed to ``to`` once it commits.

    ``link`` is the one-time link of the mail (its ``link`` variable), sealed in the job;
    ``mailbox_id`` sends through that mailbox, in the case's thread (a case that came by
    mail), instead of the tenant's chosen one; ``key`` makes planning the same mail twice
    one job (an event delivered again)."""
    await uow.jobs.schedule(
        kind=NOTIFY,
        key=key or f"{NOTIFY}:{kind}:{uuid.uuid4()}",
        due_at=utcnow(),
        payload={
            "kind": kind,
            "to": {"address": to.address, "name": to.name},
            "language": notifications.language_of(language),
            "values": dict(values),
            "link_sealed": None if link is None else box.seal(link),
            "case_id": None if case_id is None else str(case_id),
            "mailbox_id": None if mailbox_id is None else str(mailbox_id),
        },
        traceparent=trace_or_new().traceparent,
        case_id=case_id,
    )


def desk_of(name: str) -> dict[str, Any]:
    return {"name": name}


def language_of_text(text: str) -> str:
    """The language of mail to a person known only by what they wrote: Chinese when it has
    Chinese characters."""
    return "zh-Hans" if any("\u4e00" <= ch <= "\u9fff" for ch in text[:2000]) else "en"


def portal_case_url(base_url: str, workspace: str, number: int) -> str:
    """The case's page on the portal (the customer signs in first if they have to)."""
    return f"{base_url.rstrip('/')}/portal/{workspace}/cases/{number}"

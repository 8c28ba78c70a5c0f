"""Mailboxes: keeping a tenant's IMAP accounts, and taking one fetched mail in.

An admin's mailbox is checked (its template and queue exist, a move names its folder), its
password or token sealed, and its ``mailbox.poll`` job planned while it is enabled.

``take_in`` is one message's transaction: with the mailbox's row locked it checks that the
cursor still stands below the message (else another run took it), parses the mail, hands it
to ``channels.receive`` on the ``email`` channel and moves the cursor past it, all committed
together. The message's id on the channel is its Message-ID, so the same mail in another
folder, in another of the tenant's mailboxes or after a UIDVALIDITY change is recorded once;
a mail without one is known by the SHA-256 of its bytes.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from casedesk.activities.add_attachments import Attacher
from casedesk.activities.base import ActivityContext, Operator
from casedesk.activities.channels import Intake, receive
from casedesk.domain.channels import MESSAGE_ID_CHARS, ChannelMessage
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.domain.mailboxes import SMTP_PORTS, MailboxChanges, MailboxSpec, check_move
from casedesk.integrations import smtp
from casedesk.integrations.imap import DEFAULT_PORTS, FetchedMail, ImapAccount
from casedesk.integrations.mail import AttachedPart, attached_parts, parse_message
from casedesk.integrations.mail import parsed as parsed_message
from casedesk.integrations.smtp import DkimKey
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox
from casedesk.kit.errors import InvalidInput, NotFound
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import trace_or_new
from casedesk.store.models import Mailbox
from casedesk.store.unit_of_work import UnitOfWork

POLL = "mailbox.poll"
CHANNEL = "email"
"""The channel of the cases and comments mail makes, whichever mailbox it came by."""
SUBJECT_KEPT = 998
NAME_KEPT, ADDRESS_KEPT, PARTIES_KEPT = 200, 320, 500
log = get_logger(__name__)


ACKNOWLEDGE = "mail.acknowledge"
"""The job that answers a mail that opened a case with the "case received" notification."""


def acknowledges(mailbox: Mailbox, message: ChannelMessage) -> bool:
    """A person's mail that opened a case, to a mailbox that answers and can send."""
    return mailbox.acknowledge and mailbox.smtp_host is not None and not message.automatic


async def plan_acknowledgement(
    uow: UnitOfWork, mailbox: Mailbox, case_id: uuid.UUID, message: ChannelMessage
) -> None:
    """In the transaction that opened the case: its acknowledgement is sent once it commits,
    in the language the customer wrote in."""
    await uow.jobs.schedule(
        kind=ACKNOWLEDGE,
        key=f"{ACKNOWLEDGE}:{case_id}",
        due_at=utcnow(),
        payload={
            "mailbox_id": str(mailbox.id),
            "case_id": str(case_id),
            "language": "zh-Hans" if _chinese(f"{message.subject or ''} {message.text}") else "en",
        },
        traceparent=trace_or_new().traceparent,
        case_id=case_id,
    )


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text[:2000])


def poll_key(mailbox_id: uuid.UUID) -> str:
    return f"{POLL}:{mailbox_id}"


async def plan_poll(uow: UnitOfWork, mailbox: Mailbox, *, after_seconds: float = 0) -> None:
    await uow.jobs.schedule_again(
        kind=POLL,
        key=poll_key(mailbox.id),
        due_at=utcnow() + timedelta(seconds=after_seconds),
        payload={"mailbox_id": str(mailbox.id)},
        traceparent=trace_or_new().traceparent,
    )


def require_admin(actor: Principal, doing: str) -> None:
    """Mailboxes hold a password: only admins see or change them."""
    actor.require(Role.ADMIN, doing)


async def find_mailbox(uow: UnitOfWork, mailbox_id: uuid.UUID) -> Mailbox:
    mailbox = await uow.mailboxes.find(mailbox_id)
    if mailbox is None:
        raise NotFound(f"mailbox {mailbox_id} not found")
    return mailbox


async def _check_intake(uow: UnitOfWork, template: str, queue: str | None) -> None:
    if await uow.templates.by_code(template) is None:
        raise InvalidInput(f"no template {template!r}", field="template")
    if queue is not None and await uow.queues.by_code(queue) is None:
        raise InvalidInput(f"no queue {queue!r}", field="queue")


async def create_mailbox(
    uow: UnitOfWork, actor: Principal, box: SecretBox, spec: MailboxSpec
) -> Mailbox:
    require_admin(actor, "creating a mailbox")
    await uow.begin_write()
    await _check_intake(uow, spec.template, spec.queue)
    fields = spec.model_dump(exclude={"password", "port", *WRITE_ONLY})
    mailbox = Mailbox(**fields, port=spec.port or DEFAULT_PORTS[spec.security], last_uid=0)
    mailbox.secret_sealed = None if spec.password is None else box.seal(spec.password)
    if spec.smtp_host is not None and spec.smtp_port is None:
        mailbox.smtp_port = SMTP_PORTS[spec.smtp_security]
    _seal_outgoing(mailbox, box, spec.smtp_password, spec.dkim_private_key)
    mailbox.last_count, mailbox.failures = 0, 0
    if mailbox.notifications:
        await _sole_sender(uow, mailbox)
    uow.mailboxes.add(mailbox)
    await uow.flush()
    if mailbox.enabled:
        await plan_poll(uow, mailbox)
    await uow.commit()
    return mailbox


async def update_mailbox(
    uow: UnitOfWork,
    actor: Principal,
    box: SecretBox,
    mailbox_id: uuid.UUID,
    changes: MailboxChanges,
) -> Mailbox:
    require_admin(actor, "changing a mailbox")
    await uow.begin_write()
    mailbox = await uow.mailboxes.locked(mailbox_id)
    if mailbox is None:
        raise NotFound(f"mailbox {mailbox_id} not found")
    given = changes.model_dump(exclude_unset=True, exclude={"password", *WRITE_ONLY})
    for name, value in given.items():
        if value is None and name not in CLEARABLE:
            raise InvalidInput(f"{name} cannot be null", field=name)
    for name, value in given.items():
        setattr(mailbox, name, value)
    if "security" in given and "port" not in given:
        mailbox.port = DEFAULT_PORTS[mailbox.security]  # type: ignore[index]
    try:
        check_move(mailbox.after_fetch, mailbox.move_to, mailbox.folder)
    except ValueError as error:
        raise InvalidInput(str(error), field="move_to") from None
    await _check_intake(uow, mailbox.template, mailbox.queue)
    if changes.password is not None:
        mailbox.secret_sealed = box.seal(changes.password)
    if "smtp_security" in given and "smtp_port" not in given and mailbox.smtp_security:
        mailbox.smtp_port = SMTP_PORTS[mailbox.smtp_security]
    if mailbox.smtp_host is not None and mailbox.smtp_port is None:
        mailbox.smtp_port = SMTP_PORTS[mailbox.smtp_security or "starttls"]
    if "dkim_selector" in given and given["dkim_selector"] is None:
        mailbox.dkim_key_sealed = None  # no selector: nothing to sign with
    _seal_outgoing(mailbox, box, changes.smtp_password, changes.dkim_private_key)
    if (mailbox.dkim_selector is None) != (mailbox.dkim_key_sealed is None):
        raise InvalidInput("dkim_selector and dkim_private_key go together", field="dkim_selector")
    if {"host", "port", "username", "folder"} & set(given):
        mailbox.uidvalidity, mailbox.last_uid = None, 0  # another folder: a cursor of its own
    if mailbox.notifications:
        await _sole_sender(uow, mailbox)
    if mailbox.enabled:
        await plan_poll(uow, mailbox)
    else:
        await uow.jobs.cancel(poll_key(mailbox.id))
    await uow.commit()
    return mailbox


async def delete_mailbox(uow: UnitOfWork, actor: Principal, mailbox_id: uuid.UUID) -> None:
    require_admin(actor, "deleting a mailbox")
    await uow.begin_write()
    mailbox = await find_mailbox(uow, mailbox_id)
    await uow.jobs.cancel(poll_key(mailbox.id))
    await uow.mailboxes.delete(mailbox)
    await uow.commit()


CLEARABLE = frozenset(
    {
        "tls_ca",
        "move_to",
        "queue",
        "smtp_host",
        "smtp_port",
        "smtp_security",
        "smtp_username",
        "from_name",
        "dkim_selector",
    }
)
"""Fields a change may set to null (the others always have a value)."""
WRITE_ONLY = frozenset({"smtp_password", "dkim_private_key"})
"""Fields sealed rather than stored as given, never answered."""


async def _sole_sender(uow: UnitOfWork, mailbox: Mailbox) -> None:
    """The mailbox becomes the one the tenant's own mail goes out through: it needs an
    outgoing server, and every other mailbox of the tenant stops being it."""
    if mailbox.smtp_host is None:
        raise InvalidInput(
            "a mailbox that sends the tenant's mail needs an outgoing (SMTP) server; set smtp_host",
            field="notifications",
        )
    for other in await uow.mailboxes.lock_all():
        if other.id != mailbox.id and other.notifications:
            other.notifications = False


def _seal_outgoing(
    mailbox: Mailbox, box: SecretBox, password: str | None, private_key: str | None
) -> None:
    if password is not None:
        mailbox.smtp_secret_sealed = box.seal(password)
    if private_key is not None:
        selector = mailbox.dkim_selector or "casedesk"
        check_dkim_key(DkimKey(domain_of(mailbox.address), selector, private_key.encode()))
        mailbox.dkim_key_sealed = box.seal(private_key)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def check_dkim_key(key: DkimKey) -> None:
    """Refuse a key that cannot sign (not PEM, not RSA or Ed25519) when it is given."""
    try:
        smtp.sign(b"From: a@example.com\r\nSubject: key check\r\n\r\nx\r\n", key)
    except smtp.SmtpFailed as failed:
        raise InvalidInput(failed.answer, field="dkim_private_key") from None


def smtp_server_of(mailbox: Mailbox, box: SecretBox, *, timeout: float) -> smtp.SmtpServer | None:
    """How to reach the mailbox's outgoing server; none when it has none. Opening its secret
    raises ``SecretUnreadable``."""
    if mailbox.smtp_host is None:
        return None
    sealed = mailbox.smtp_secret_sealed or mailbox.secret_sealed
    security = mailbox.smtp_security or "starttls"
    return smtp.SmtpServer(
        host=mailbox.smtp_host,
        port=mailbox.smtp_port or SMTP_PORTS[security],
        security=security,  # type: ignore[arg-type]
        username=mailbox.smtp_username or mailbox.username,
        secret=None if sealed is None else box.open(sealed),
        auth=mailbox.auth if mailbox.smtp_secret_sealed is None else "password",  # type: ignore[arg-type]
        tls_verify=mailbox.tls_verify,
        tls_ca=mailbox.tls_ca,
        timeout=timeout,
    )


def dkim_key_of(mailbox: Mailbox, box: SecretBox) -> DkimKey | None:
    if mailbox.dkim_key_sealed is None or mailbox.dkim_selector is None:
        return None
    key = box.open(mailbox.dkim_key_sealed).encode()
    return DkimKey(domain_of(mailbox.address), mailbox.dkim_selector, key)


def account_of(
    mailbox: Mailbox, box: SecretBox, *, allow_plain: bool, timeout: float
) -> ImapAccount:
    """How to reach the mailbox; opening its secret raises ``SecretUnreadable``."""
    secret = None if mailbox.secret_sealed is None else box.open(mailbox.secret_sealed)
    return ImapAccount(
        host=mailbox.host,
        port=mailbox.port,
        security=mailbox.security,  # type: ignore[arg-type]
        username=mailbox.username,
        password=secret if mailbox.auth == "password" else None,
        oauth_token=secret if mailbox.auth == "xoauth2" else None,
        ca_pem=mailbox.tls_ca,
        verify=mailbox.tls_verify,
        allow_plain=allow_plain,
        timeout=timeout,
    )


# --- taking mail in -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parsed:
    message: ChannelMessage | None
    """None: the mail cannot be a channel message (the note says why)."""
    attachments: list[AttachedPart]
    """Where the attachment store takes the mail's files from."""
    note: str | None = None


def mail_id(raw: bytes, message_id: str | None) -> str:
    """The mail's id on the channel: its Message-ID, or ``sha256:`` of its bytes."""
    if message_id and len(message_id) <= MESSAGE_ID_CHARS and message_id == message_id.strip():
        return message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _fitted(party: dict[str, Any]) -> dict[str, Any]:
    """A party as a channel message keeps it: an overlong name cut, an overlong address
    (no real one is) dropped, so that no mail is refused for its headers."""
    address, name = party.get("address"), party.get("name")
    return {
        "address": address if isinstance(address, str) and len(address) <= ADDRESS_KEPT else None,
        "name": name[:NAME_KEPT] if isinstance(name, str) else None,
    }


def parse_mail(mailbox: Mailbox, uidvalidity: int, mail: FetchedMail) -> Parsed:
    message = parsed_message(mail.raw)
    fields = parse_message(message)
    if fields.get("subject") and len(fields["subject"]) > SUBJECT_KEPT:
        fields["subject"] = fields["subject"][:SUBJECT_KEPT]
    fields["sender"] = _fitted(fields.get("sender") or {})
    for name in ("to", "cc"):
        fields[name] = [_fitted(party) for party in fields.get(name) or []][:PARTIES_KEPT]
    fields["id"] = mail_id(mail.raw, fields.get("message_id"))
    fields["reply"] = {
        "mailbox_id": str(mailbox.id),
        "address": mailbox.address,
        "folder": mailbox.folder,
        "uidvalidity": uidvalidity,
        "uid": mail.uid,
    }
    attachments = attached_parts(message)
    try:
        return Parsed(ChannelMessage.model_validate(fields), attachments)
    except ValidationError as error:
        return Parsed(None, attachments, f"the mail is no message casedesk can take: {error}")


async def take_in(
    context: ActivityContext,
    mailbox_id: uuid.UUID,
    uidvalidity: int,
    mail: FetchedMail,
    attacher: Attacher | None = None,
) -> dict[str, Any] | None:
    """One fetched mail into a case or a comment, the cursor moved past it; None when
    another run has taken it already (the cursor is past it, or on another UIDVALIDITY)."""
    uow = context.uow
    await uow.begin_write()
    mailbox = await uow.mailboxes.locked(mailbox_id)
    if mailbox is None or mailbox.uidvalidity != uidvalidity or mailbox.last_uid >= mail.uid:
        return None
    parsed = parse_mail(mailbox, uidvalidity, mail)
    if parsed.message is None:
        log.warning("mail skipped", mailbox_id=str(mailbox_id), uid=mail.uid, note=parsed.note)
        outcome: dict[str, Any] = {"outcome": "skipped", "note": parsed.note}
    else:
        intake = Intake(
            channel=CHANNEL, connection_id=None, template=mailbox.template, queue=mailbox.queue
        )
        outcome = await receive(context, parsed.message, intake)
        if outcome["outcome"] == "opened" and acknowledges(mailbox, parsed.message):
            await plan_acknowledgement(uow, mailbox, uuid.UUID(outcome["case_id"]), parsed.message)
    mailbox.last_uid = mail.uid
    outcome["uid"] = mail.uid
    if attacher is not None and outcome.get("outcome") in ("opened", "followed_up", "commented"):
        outcome["attachments"] = await attacher.attach(context, outcome, parsed.attachments)
    else:
        outcome["attachments"] = [part.metadata() for part in parsed.attachments]
    return outcome


async def restart_if_renumbered(
    uow: UnitOfWork,
    mailbox_id: uuid.UUID,
    uidvalidity: int,
    newest: int | None = None,
) -> int:
    """The UID the run goes on after: the cursor's, or, when the folder's UIDVALIDITY is not
    the one it was taken on (a folder made again), 0: the folder is read from its first
    message, and what was taken in before is known by its id. On a first run (no cursor yet,
    also after the folder or the account changed) a mailbox that skips existing mail starts
    after ``newest``, the highest UID in the folder now (learnt before this transaction)."""
    await uow.begin_write()
    mailbox = await uow.mailboxes.locked(mailbox_id)
    if mailbox is None:
        raise NotFound(f"mailbox {mailbox_id} not found")
    if mailbox.uidvalidity != uidvalidity:
        first = mailbox.uidvalidity is None
        if not first:
            log.info(
                "mailbox UIDVALIDITY changed; reading the folder again",
                mailbox_id=str(mailbox_id),
                before=mailbox.uidvalidity,
                now=uidvalidity,
            )
        skip = first and mailbox.existing_mail == "skip"
        mailbox.uidvalidity, mailbox.last_uid = uidvalidity, (newest or 0) if skip else 0
    last = mailbox.last_uid
    await uow.commit()
    return last


def operator_of(mailbox: Mailbox) -> Operator:
    return Operator("connector", str(mailbox.id), f"mailbox {mailbox.name}"[:200])

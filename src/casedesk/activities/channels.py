"""Channel messages into cases and comments, and agents' replies back out.

``receive`` applies the threading rules of ``domain.channels`` to one message, in the
caller's transaction: it opens a case, comments on one, reopens a closed one (or opens a
follow-up linked as its child), records an edit or a deletion, or does nothing (a message
seen before, casedesk's own, an automatic one outside any thread). Every message it keeps is
a ``channel_messages`` row, unique per tenant, channel and external id, so a message is
never a case or a comment twice.

An agent's public comment on such a case is queued for delivery by ``AddCommentActivity``
(``activities.channel_delivery``); ``reply_for`` builds the ``Reply`` the channel's job sends, and
``record_sent`` / ``record_failure`` keep the outcome on the comment.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from casedesk.activities.add_comment import AddCommentActivity, CommentParams
from casedesk.activities.apply_action import ActionParams, ApplyActionActivity
from casedesk.activities.base import Activity, ActivityContext
from casedesk.activities.channel_delivery import queue_delivery
from casedesk.activities.create_case import create_case
from casedesk.domain.cases.inputs import (
    ActionInput,
    AuthorRef,
    CaseDraft,
    CommentInput,
    CustomerRef,
)
from casedesk.domain.cases.machines import machine_of_version
from casedesk.domain.channels import (
    ChannelMessage,
    Party,
    Reply,
    ReplyFile,
    html_of,
    reply_subject,
)
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import Conflict, InvalidInput, NotFound
from casedesk.store.models import Case, ChannelMessageRecord, Comment
from casedesk.store.unit_of_work import UnitOfWork

BODY_KEPT = 65_536
TITLE_KEPT = 300
NO_TEXT = "(no text)"


@dataclass(frozen=True, slots=True)
class Intake:
    """How a workflow's ``receive_message`` step opens cases for its channel."""

    channel: str
    """The connector's id, which is the channel of the cases and comments it makes."""
    connection_id: uuid.UUID | None
    template: str
    queue: str | None = None
    priority: str | None = None
    tags: list[str] = field(default_factory=list)
    on_closed: Literal["reopen", "follow_up"] = "reopen"


def _outcome(
    outcome: str,
    case: Case | None = None,
    *,
    comment_id: uuid.UUID | None = None,
    case_id: uuid.UUID | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    found = case.id if case is not None else case_id
    return {
        "outcome": outcome,
        "case_id": None if found is None else str(found),
        "number": None if case is None else case.number,
        "comment_id": None if comment_id is None else str(comment_id),
        "note": note,
    }


async def receive(
    context: ActivityContext, message: ChannelMessage, intake: Intake
) -> dict[str, Any]:
    """Apply the threading rules to one message; what became of it."""
    uow = context.uow
    await uow.begin_write()
    if message.kind == "ignored":
        return _outcome("ignored", note=message.note)
    known = await uow.channel_messages.by_external_id(intake.channel, message.id)
    if message.kind in ("edit", "delete"):
        return await _change(context, known, message)
    if known is not None:
        outcome = "own" if known.direction == "out" else "duplicate"
        return _outcome(outcome, case_id=known.case_id, comment_id=known.comment_id)
    if message.own or await _sent_by_casedesk(uow, message):
        return _outcome("own")
    case = await _case_of_thread(uow, intake.channel, message)
    if case is None:
        if message.automatic:
            return _outcome("automatic", note="automatic mail opens no case")
        return await _open(context, message, intake, parent=None)
    if case.closed and not message.automatic:
        reopened = intake.on_closed == "reopen" and await _reopen(context, case)
        if not reopened:
            return await _open(context, message, intake, parent=case)
    return await _comment(context, case, message, intake)


async def _sent_by_casedesk(uow: UnitOfWork, message: ChannelMessage) -> bool:
    if message.message_id is None:
        return False
    rows = await uow.channel_messages.by_message_keys([message.message_id])
    return any(row.direction == "out" for row in rows)


async def _case_of_thread(uow: UnitOfWork, channel: str, message: ChannelMessage) -> Case | None:
    """The case of the message's thread: by the provider's thread id, then the Message-IDs
    it answers, then a ``[#N]`` token in its subject when its sender is the case's
    customer (anyone can type a number; only the requester's own mail threads by it)."""
    if message.thread_id is not None:
        row = await uow.channel_messages.latest_in_thread(channel, message.thread_id)
        if row is not None:
            return await uow.cases.get(row.case_id)
    keys = message.thread_keys()
    rows = await uow.channel_messages.by_message_keys(keys)
    for key in keys:
        matching = [row for row in rows if row.message_key == key]
        if matching:
            return await uow.cases.get(max(matching, key=lambda row: row.id).case_id)
    number = message.case_number()
    if number is None or message.sender.address is None:
        return None
    case = await uow.cases.by_number(number)
    if case is None or case.customer_id is None:
        return None
    customer = await uow.customers.find(case.customer_id)
    if customer is None or customer.email != message.sender.address.strip().lower():
        return None
    return case


def _address(sender: Party, channel: str) -> str:
    """The sender's address; a chat user without one gets a reserved, undeliverable one."""
    if sender.address:
        return sender.address
    who = "".join(c for c in (sender.id or "unknown").lower() if c.isalnum() or c in "._-")
    return f"{who or 'unknown'}@{channel}.invalid"


def _title(message: ChannelMessage) -> str:
    subject = (message.subject or "").strip()
    if subject:
        return subject[:TITLE_KEPT]
    first = next((line.strip() for line in message.text.splitlines() if line.strip()), "")
    return (first or NO_TEXT)[:TITLE_KEPT]


def _thread_of(message: ChannelMessage) -> str:
    return message.thread_id or message.id


def _record(
    uow: UnitOfWork,
    case: Case,
    message: ChannelMessage,
    intake: Intake,
    comment_id: uuid.UUID | None,
) -> None:
    uow.channel_messages.add(
        ChannelMessageRecord(
            tenant_id=case.tenant_id,
            case_id=case.id,
            comment_id=comment_id,
            channel=intake.channel,
            connection_id=intake.connection_id,
            external_id=message.id,
            thread_id=_thread_of(message),
            message_key=message.message_id,
            direction="in",
            subject=message.subject,
            reply=message.reply,
        )
    )


def _invalid(exc: Exception) -> InvalidInput:
    return InvalidInput(f"the message cannot make a case: {exc}")


async def _open(
    context: ActivityContext, message: ChannelMessage, intake: Intake, *, parent: Case | None
) -> dict[str, Any]:
    try:
        draft = CaseDraft(
            template=intake.template,
            title=_title(message),
            description=message.text[:BODY_KEPT] or None,
            priority=intake.priority,
            queue=intake.queue,
            customer=CustomerRef(
                email=_address(message.sender, intake.channel), name=message.sender.name
            ),
            channel=intake.channel,
            external_ref=message.id,
            parent_id=None if parent is None else parent.id,
            tags=intake.tags,
        )
    except ValueError as exc:
        raise _invalid(exc) from None
    outcome = await create_case(context, draft)
    case = outcome.case or await context.uow.cases.get(uuid.UUID(outcome.body["id"]))
    if outcome.status_code == 201:
        _record(context.uow, case, message, intake, None)
        await context.uow.flush()
    return _outcome("opened" if parent is None else "followed_up", case)


async def _reopen(context: ActivityContext, case: Case) -> bool:
    """Reopen a closed case by the first reopening action its machine allows; False when
    there is none."""
    machine = await machine_of_version(context.uow, case.machine_version_id)
    action = next((t.action for t in machine.allowed(case.state) if t.reopen), None)
    if action is None:
        return False
    await ApplyActionActivity(context).run(ActionParams(case.id, action, ActionInput()))
    return True


async def _comment(
    context: ActivityContext, case: Case, message: ChannelMessage, intake: Intake
) -> dict[str, Any]:
    text = message.text[:BODY_KEPT] or NO_TEXT
    address = _address(message.sender, intake.channel)
    if message.automatic:
        # An auto-reply or a bounce in a known thread: the agents see it, nobody answers it.
        sender = message.sender.name or address
        author = AuthorRef(type="system", name=f"automatic mail from {sender}"[:200])
        body = CommentInput(
            body=text, public=False, author=author, channel=intake.channel, external_id=message.id
        )
    else:
        author = AuthorRef(type="customer", email=address, name=message.sender.name)
        body = CommentInput(
            body=text, public=True, author=author, channel=intake.channel, external_id=message.id
        )
    comment = await AddCommentActivity(context).run(CommentParams(case.id, body))
    comment.thread_id = _thread_of(message)
    _record(context.uow, case, message, intake, comment.id)
    await context.uow.flush()
    return _outcome("commented", case, comment_id=comment.id)


# --- edits and deletions at the source ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangeParams:
    record: ChannelMessageRecord
    message: ChannelMessage


class ChangeChannelMessageActivity(Activity[ChangeParams, Case]):
    """An edit or a deletion of a message at its source, kept on its comment and in the
    case's history."""

    name = "comment.channel_change"

    async def execute(self, params: ChangeParams) -> Case:
        case = self.case = await self.load_case(params.record.case_id, lock=True)
        message, now = params.message, utcnow()
        comment = None
        if params.record.comment_id is not None:
            comment = await self.uow.comments.find(params.record.comment_id)
        memo: dict[str, Any] = {
            "comment_id": None if comment is None else str(comment.id),
            "external_id": message.id,
            "channel": params.record.channel,
        }
        if message.kind == "edit":
            text = message.text[:BODY_KEPT] or NO_TEXT
            if comment is not None:
                memo["before"] = _excerpt(comment.body)
                comment.body, comment.edited_at = text, now
            memo["after"] = _excerpt(text)
            self.record(case, "comment.edited_at_source", memo)
        else:
            if comment is not None:
                comment.deleted_at = now
            self.record(case, "comment.deleted_at_source", memo)
        if comment is not None:
            self.emit(
                "comment.changed", case, {"comment_id": str(comment.id), "change": message.kind}
            )
        return case


def _excerpt(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."


async def _change(
    context: ActivityContext, known: ChannelMessageRecord | None, message: ChannelMessage
) -> dict[str, Any]:
    if known is None or known.direction != "in":
        return _outcome("ignored", note=f"{message.kind} of a message casedesk does not hold")
    case = await ChangeChannelMessageActivity(context).run(ChangeParams(known, message))
    outcome = "edited" if message.kind == "edit" else "deleted"
    return _outcome(outcome, case, comment_id=known.comment_id)


# --- replies going out ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    reply: Reply
    channel: str
    connection_id: uuid.UUID | None
    thread_id: str | None


async def reply_for(uow: UnitOfWork, comment_id: uuid.UUID, *, domain: str) -> Outgoing | None:
    """What a pending comment goes out as; None when it is gone or no longer pending."""
    comment = await uow.comments.find(comment_id)
    if comment is None or comment.delivery_status != "pending":
        return None
    case = await uow.cases.get(comment.case_id)
    rows = await uow.channel_messages.of_case(case.id)
    inbound = [row for row in rows if row.direction == "in"]
    if not inbound:
        return None
    latest = inbound[-1]
    to: list[Party] = []
    if case.customer_id is not None:
        customer = await uow.customers.find(case.customer_id)
        if customer is not None and not customer.email.endswith(".invalid"):
            to.append(Party(address=customer.email, name=customer.name))
    references: list[str] = []
    for row in rows:
        if row.message_key and row.message_key not in references:
            references.append(row.message_key)
    files = (await uow.attachments.of_comments([comment.id])).get(comment.id, [])
    reply = Reply(
        text=comment.body,
        html=html_of(comment.body),
        subject=reply_subject(inbound[0].subject or case.title, case.number),
        to=to,
        thread_id=latest.thread_id,
        message_id=f"casedesk.{comment.id.hex}@{domain}",
        in_reply_to=latest.message_key,
        references=references,
        reply=latest.reply,
        case={"id": str(case.id), "number": case.number, "title": case.title},
        comment={"id": str(comment.id), "author_name": comment.author_name},
        attachments=[
            ReplyFile(
                id=str(file.id),
                filename=file.filename,
                content_type=file.content_type,
                size=file.size,
                sha256=file.sha256,
            )
            for file in files
        ],
    )
    return Outgoing(reply, latest.channel, latest.connection_id, latest.thread_id)


async def record_sent(
    uow: UnitOfWork, comment_id: uuid.UUID, outgoing: Outgoing, provider_id: str | None
) -> None:
    """The comment went out: its status, and the message that threads what answers it."""
    comment = await uow.comments.find(comment_id)
    if comment is None:
        return
    comment.delivery_status, comment.delivery_error = "sent", None
    comment.delivered_id = provider_id
    comment.delivery_attempts += 1
    external_id = provider_id or f"<{outgoing.reply.message_id}>"
    try:
        async with uow.session.begin_nested():
            uow.channel_messages.add(
                ChannelMessageRecord(
                    tenant_id=comment.tenant_id,
                    case_id=comment.case_id,
                    comment_id=comment.id,
                    channel=outgoing.channel,
                    connection_id=outgoing.connection_id,
                    external_id=external_id[:255],
                    thread_id=outgoing.thread_id,
                    message_key=outgoing.reply.message_id,
                    direction="out",
                    subject=outgoing.reply.subject,
                    reply=outgoing.reply.reply,
                )
            )
    except IntegrityError:
        pass  # a send made again after a lost answer: the message is recorded already


async def record_failure(uow: UnitOfWork, comment_id: uuid.UUID, error: str, *, final: bool) -> int:
    """A failed attempt; ``final``: the comment is ``failed`` until someone retries it. The
    attempts made so far."""
    comment = await uow.comments.find(comment_id)
    if comment is None:
        return 0
    comment.delivery_attempts += 1
    comment.delivery_error = error[:4000]
    if final:
        comment.delivery_status = "failed"
    return comment.delivery_attempts


@dataclass(frozen=True, slots=True)
class RedeliverParams:
    case_id: uuid.UUID
    comment_id: uuid.UUID


class RedeliverActivity(Activity[RedeliverParams, Comment]):
    """Send a comment whose delivery failed again (``POST …/comments/{id}/redeliver``)."""

    name = "comment.redeliver"

    async def execute(self, params: RedeliverParams) -> Comment:
        case = self.case = await self.load_case(params.case_id, lock=True)
        comment = await self.uow.comments.find(params.comment_id)
        if comment is None or comment.case_id != case.id:
            raise NotFound(f"comment {params.comment_id} not found")
        if comment.delivery_status != "failed":
            state = comment.delivery_status or "not sent to a channel"
            raise Conflict(f"only a failed delivery can be retried; this comment is {state}")
        self.record(
            case,
            "comment.redeliver",
            {"comment_id": str(comment.id), "error": comment.delivery_error},
        )
        comment.delivery_attempts, comment.delivery_error = 0, None
        await queue_delivery(self.uow, comment, self.ctx.trace)
        return comment

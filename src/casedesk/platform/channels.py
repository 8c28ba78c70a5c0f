"""Replies going back out through the channel a case came from.

``Deliverer`` runs ``channel.deliver`` jobs: an agent's public comment on a case that came
from a channel is sent through the connection the thread came in by, with the connector's
``channel.reply.action`` (its input made by the hooks' ``outgoing``, or the ``Reply`` as it
is). The comment shows ``pending`` until then, ``sent`` with the provider's id, or
``failed`` with the error: a refusal (a 4xx other than 408/425/429, a connector that cannot
reply) at once, anything transient after six attempts over about an hour and a half, each
waiting for the provider's ``Retry-After`` when it gives one. ``POST
/cases/{id}/comments/{comment_id}/redeliver`` queues a failed one again. The send is at
least once: a worker that dies after the provider took the message and before the commit
sends it again, with the same Message-ID.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from casedesk.activities.channel_delivery import DELIVER, deliver_key
from casedesk.activities.channels import Outgoing, record_failure, record_sent, reply_for
from casedesk.activities.connections import open_client
from casedesk.integrations.connector_hooks import hooks_of
from casedesk.integrations.expressions import select
from casedesk.integrations.hub import Hub
from casedesk.integrations.retry import RETRY_AFTER_STATUSES, parse_retry_after
from casedesk.integrations.runtime import ConnectorClient
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox
from casedesk.kit.logging import get_logger
from casedesk.kit.tracing import new_trace, parse_traceparent
from casedesk.platform import reply_files
from casedesk.platform.mail_replies import CHANNEL as MAIL_CHANNEL
from casedesk.platform.mail_replies import MailReplies
from casedesk.platform.runner import (
    StepFailed,
    answer_of,
    bounded_text,
    check_input,
    failure_of,
)
from casedesk.store.blobs import BlobStore
from casedesk.store.database import Database
from casedesk.store.jobs import PLANNED_AGAIN
from casedesk.store.models import ScheduledJob
from casedesk.store.unit_of_work import UnitOfWork

log = get_logger(__name__)

BACKOFF = (
    timedelta(seconds=15),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=20),
    timedelta(hours=1),
)
"""The waits between a reply's attempts; after the last one it is ``failed``."""
RETRY_AFTER_MAX = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class _Sent:
    provider_id: str | None


def message_domain(public_url: str) -> str:
    """The domain of the Message-IDs casedesk writes: its public host, when that is a name
    (``support.example.com``), else ``casedesk.invalid`` (a Message-ID needs a domain)."""
    host = (httpx.URL(public_url).host or "").strip(".").lower()
    if "." not in host or host.replace(".", "").isdigit() or ":" in host:
        return "casedesk.invalid"
    return host


class Deliverer:
    """Runs ``channel.deliver`` jobs."""

    def __init__(
        self,
        database: Database,
        hub: Hub,
        box: SecretBox,
        *,
        domain: str,
        mail: MailReplies,
        blobs: BlobStore | None = None,
        files_max_bytes: int = 25 * 1024 * 1024,
    ) -> None:
        self.database, self.hub, self.box, self.domain = database, hub, box, domain
        self.mail = mail
        """Replies on cases that came by a mailbox (the ``email`` channel) go out by SMTP."""
        self.blobs = blobs
        """Where a mail channel's reply reads the comment's files from."""
        self.files_max_bytes = files_max_bytes

    async def run_job(self, job: ScheduledJob) -> str | None:
        comment_id = uuid.UUID(str(job.payload["comment_id"]))
        tenant_id = job.tenant_id
        trace = parse_traceparent(job.traceparent) or new_trace()
        try:
            async with UnitOfWork(self.database, tenant_id) as uow:
                outgoing = await reply_for(uow, comment_id, domain=self.domain)
                if outgoing is None:
                    return None
                if outgoing.channel == MAIL_CHANNEL:
                    comment = await uow.comments.get(comment_id)
                    by_mail = await self.mail.prepare(
                        uow, outgoing, parent=trace, attempt=comment.delivery_attempts + 1
                    )
                else:
                    client = await open_client(
                        uow,
                        self.hub,
                        self.box,
                        tenant_id=tenant_id,
                        connector=outgoing.channel,
                        connection_id=outgoing.connection_id,
                    )
            if outgoing.channel == MAIL_CHANNEL:
                outgoing = by_mail.outgoing
                sent = _Sent(await self.mail.send(by_mail))
            else:
                sent = await self._send(client, outgoing, trace.child().traceparent)
        except Exception as exc:
            return await self._failed(job, comment_id, exc)
        async with UnitOfWork(self.database, tenant_id) as uow:
            await uow.begin_write()
            await uow.jobs.hold(job)
            await record_sent(uow, comment_id, outgoing, sent.provider_id)
            await uow.commit()
        log.info("reply sent", comment_id=str(comment_id), channel=outgoing.channel)
        return None

    async def _send(self, client: ConnectorClient, outgoing: Outgoing, traceparent: str) -> _Sent:
        manifest = client.manifest
        spec = manifest.channel.reply if manifest.channel else None
        if spec is None or spec.action not in manifest.actions:
            raise StepFailed(f"connector {manifest.id!r} sends no replies", final=True)
        action = manifest.actions[spec.action]
        # A reply without files keeps the shape it had before replies carried any, which a
        # connector that takes the reply as its input as it is may check strictly.
        reply = outgoing.reply.model_dump(
            mode="json", exclude=None if outgoing.reply.attachments else {"attachments"}
        )
        if manifest.channel is not None and manifest.channel.kind == "mail":
            files = await self._files(outgoing)
            if files:
                reply["files"] = files
        given = hooks_of(manifest).outgoing(
            spec.action, reply, {"settings": dict(client.account.settings)}
        )
        given = reply if given is None else given
        check_input(action.input, given)
        response = await client.send(
            action.request, {"input": given}, action=spec.action, traceparent=traceparent
        )
        _refuse(response)
        body = answer_of(response)
        error = select(action.error, body) if action.error is not None else None
        if error not in (None, False, "", [], {}):
            raise ReplyRefused(
                f"{spec.action} failed: {str(error)[:300]}",
                final=str(error) not in action.transient_errors,
                retry_after=None,
            )
        output = select(action.output, body) if action.output is not None else body
        if spec.output_id is not None:
            found = select(spec.output_id, output)
        elif isinstance(output, dict):
            found = output.get("id")
        else:
            found = output if isinstance(output, str) else None
        return _Sent(str(found)[:255] if isinstance(found, str | int) and found != "" else None)

    async def _files(self, outgoing: Outgoing) -> list[dict[str, Any]]:
        """A mail channel's reply carries the comment's files, for its hooks to send: each
        as ``filename``, ``content_type``, ``size`` and base64 ``content``. A chat channel's
        reply does not (Slack and Teams get the text only)."""
        files = outgoing.reply.attachments
        if not files:
            return []
        if self.blobs is None:
            raise StepFailed("this process cannot read the reply's files", final=False)
        loaded = await reply_files.load(self.blobs, files, limit=self.files_max_bytes)
        return [
            {
                "filename": file.filename,
                "content_type": file.content_type,
                "size": len(file.content),
                "content": base64.b64encode(file.content).decode("ascii"),
            }
            for file in loaded
        ]

    async def _failed(self, job: ScheduledJob, comment_id: uuid.UUID, exc: Exception) -> str | None:
        failure = failure_of(exc)
        retry_after = getattr(exc, "retry_after", None)
        async with UnitOfWork(self.database, job.tenant_id) as uow:
            await uow.begin_write()
            await uow.jobs.hold(job)
            comment = await uow.comments.find(comment_id)
            made = 0 if comment is None else comment.delivery_attempts
            final = failure.final or made >= len(BACKOFF)
            await record_failure(uow, comment_id, bounded_text(failure.message), final=final)
            if not final:
                wait = BACKOFF[made]
                if isinstance(retry_after, int | float) and retry_after > 0:
                    wait = min(max(wait, timedelta(seconds=retry_after)), RETRY_AFTER_MAX)
                await uow.jobs.schedule_again(
                    kind=DELIVER,
                    key=deliver_key(comment_id),
                    due_at=utcnow() + wait,
                    payload=dict(job.payload),
                    traceparent=job.traceparent,
                )
            await uow.commit()
        log.warning(
            "reply not sent",
            comment_id=str(comment_id),
            error=failure.message[:300],
            final=final,
        )
        return PLANNED_AGAIN if not final else None


class ReplyRefused(StepFailed):
    def __init__(self, message: str, *, final: bool, retry_after: float | None) -> None:
        super().__init__(message, final=final)
        self.retry_after = retry_after


def _refuse(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    retry_after = None
    if status in RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
    request = response.request
    raise ReplyRefused(
        f"{request.method} {request.url.copy_with(query=None)} answered {status}: "
        f"{response.text[:300]}",
        final=status < 500 and status not in (408, 425, 429),
        retry_after=retry_after,
    )

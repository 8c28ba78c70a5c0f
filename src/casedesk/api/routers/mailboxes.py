"""Mailboxes (admins): IMAP accounts that mail comes in from; testing one, polling one now.

The password (or OAuth2 token) is write-only: answers say ``has_password`` instead. ``POST
/mailboxes/{id}/test`` answers 200 whether the server took the login or not: ``ok`` says
which, and ``error`` gives what the server (or the network) answered.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from casedesk.activities import mailboxes
from casedesk.api import API_V1
from casedesk.api.deps import ContainerDep, PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.bootstrap import mailbox_poller
from casedesk.domain.mailboxes import MailboxChanges, MailboxSpec
from casedesk.kit.errors import NotFound
from casedesk.store.models import Mailbox

router = APIRouter(prefix=f"{API_V1}/mailboxes", tags=["mailboxes"], route_class=ApiRoute)


class MailboxOut(BaseModel):
    id: uuid.UUID
    name: str
    address: str
    host: str
    port: int
    security: str
    tls_verify: bool
    tls_ca: str | None
    username: str
    auth: str
    has_password: bool
    folder: str
    after_fetch: str
    move_to: str | None
    existing_mail: str
    poll_seconds: int
    template: str
    queue: str | None
    enabled: bool
    uidvalidity: int | None
    last_uid: int
    last_poll_at: datetime | None
    last_error: str | None
    last_count: int
    smtp_host: str | None
    smtp_port: int | None
    smtp_security: str | None
    smtp_username: str | None
    has_smtp_password: bool
    """False: the outgoing server takes the IMAP password or token."""
    from_name: str | None
    dkim_selector: str | None
    has_dkim_key: bool
    acknowledge: bool
    notifications: bool
    """The tenant's own mail goes out through this mailbox."""
    created_at: datetime
    updated_at: datetime


class MailboxList(BaseModel):
    items: list[MailboxOut]


class SmtpTestOut(BaseModel):
    ok: bool
    error: str | None = None
    greeting: str | None = None
    extensions: list[str] = []


class TestOut(BaseModel):
    ok: bool
    error: str | None = None
    capabilities: list[str] = []
    folder: str | None = None
    messages: int | None = None
    uidvalidity: int | None = None
    uidnext: int | None = None
    smtp: SmtpTestOut | None = None
    """The outgoing server's answer; none when the mailbox has no outgoing server."""


class PollOut(BaseModel):
    ok: bool
    fetched: int
    taken: int
    outcomes: list[dict[str, Any]]
    error: str | None
    uidvalidity: int | None
    last_uid: int | None


def _out(mailbox: Mailbox) -> MailboxOut:
    return MailboxOut(
        id=mailbox.id,
        name=mailbox.name,
        address=mailbox.address,
        host=mailbox.host,
        port=mailbox.port,
        security=mailbox.security,
        tls_verify=mailbox.tls_verify,
        tls_ca=mailbox.tls_ca,
        username=mailbox.username,
        auth=mailbox.auth,
        has_password=mailbox.secret_sealed is not None,
        folder=mailbox.folder,
        after_fetch=mailbox.after_fetch,
        move_to=mailbox.move_to,
        existing_mail=mailbox.existing_mail,
        poll_seconds=mailbox.poll_seconds,
        template=mailbox.template,
        queue=mailbox.queue,
        enabled=mailbox.enabled,
        uidvalidity=mailbox.uidvalidity,
        last_uid=mailbox.last_uid,
        last_poll_at=mailbox.last_poll_at,
        last_error=mailbox.last_error,
        last_count=mailbox.last_count,
        smtp_host=mailbox.smtp_host,
        smtp_port=mailbox.smtp_port,
        smtp_security=mailbox.smtp_security,
        smtp_username=mailbox.smtp_username,
        has_smtp_password=mailbox.smtp_secret_sealed is not None,
        from_name=mailbox.from_name,
        dkim_selector=mailbox.dkim_selector,
        has_dkim_key=mailbox.dkim_key_sealed is not None,
        acknowledge=mailbox.acknowledge,
        notifications=mailbox.notifications,
        created_at=mailbox.created_at,
        updated_at=mailbox.updated_at,
    )


@router.get("", response_model=MailboxList, summary="The tenant's mailboxes (admins)")
async def list_mailboxes(principal: PrincipalDep, uow: UnitOfWorkDep) -> MailboxList:
    mailboxes.require_admin(principal, "reading mailboxes")
    return MailboxList(items=[_out(m) for m in await uow.mailboxes.all()])


@router.post("", response_model=MailboxOut, status_code=status.HTTP_201_CREATED)
async def create_mailbox(
    body: MailboxSpec, principal: PrincipalDep, uow: UnitOfWorkDep, container: ContainerDep
) -> MailboxOut:
    return _out(await mailboxes.create_mailbox(uow, principal, container.box, body))


@router.get("/{mailbox_id}", response_model=MailboxOut)
async def read_mailbox(
    mailbox_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> MailboxOut:
    mailboxes.require_admin(principal, "reading mailboxes")
    return _out(await mailboxes.find_mailbox(uow, mailbox_id))


@router.patch("/{mailbox_id}", response_model=MailboxOut)
async def update_mailbox(
    mailbox_id: uuid.UUID,
    body: MailboxChanges,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
) -> MailboxOut:
    return _out(await mailboxes.update_mailbox(uow, principal, container.box, mailbox_id, body))


@router.delete("/{mailbox_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_mailbox(
    mailbox_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> Response:
    await mailboxes.delete_mailbox(uow, principal, mailbox_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{mailbox_id}/test",
    response_model=TestOut,
    summary="Connect, log in and select the folder: the server's answer (ok false: its refusal)",
)
async def test_mailbox(
    mailbox_id: uuid.UUID, principal: PrincipalDep, container: ContainerDep
) -> TestOut:
    mailboxes.require_admin(principal, "testing a mailbox")
    answer = await mailbox_poller(container).test(principal.tenant_id, mailbox_id)
    return TestOut.model_validate(answer)


@router.post("/{mailbox_id}/poll", response_model=PollOut, summary="Poll the mailbox now")
async def poll_mailbox(
    mailbox_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep, container: ContainerDep
) -> PollOut:
    mailboxes.require_admin(principal, "polling a mailbox")
    await mailboxes.find_mailbox(uow, mailbox_id)
    report = await mailbox_poller(container).poll(principal.tenant_id, mailbox_id)
    if report is None:
        raise NotFound(f"mailbox {mailbox_id} is disabled or gone")
    return PollOut.model_validate(report.as_dict())

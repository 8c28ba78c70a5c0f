"""The admins' screens of mailboxes: the tenant's IMAP accounts with where each poll got to,
a mailbox added, changed or deleted, its connection tested and a poll run on demand.

The forms are read into the API's ``MailboxSpec`` and ``MailboxChanges`` and run the API's
activities (``activities/mailboxes.py``); the test and the poll are the API's
(``MailboxPoller.test`` and ``.poll``). The password or token is write-only here as there:
its input is always empty, a blank one keeps what is stored, and the pages only say
whether one is set."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from casedesk.activities import mailboxes
from casedesk.bootstrap import mailbox_poller
from casedesk.domain.mailboxes import MailboxChanges, MailboxSpec
from casedesk.kit.errors import CasedeskError, NotFound
from casedesk.store.models import Mailbox
from casedesk.web.admin import _admin, _page
from casedesk.web.admin_people import _id
from casedesk.web.integrations import _refusal
from casedesk.web.pages import Viewer, problems, render
from casedesk.web.session import (
    check_csrf,
    container_of,
    person,
    plain_text_only,
    tenant_work,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
PersonDep = Annotated[Viewer, Depends(person)]

TEXTS = (
    "name",
    "address",
    "host",
    "port",
    "security",
    "tls_ca",
    "username",
    "auth",
    "folder",
    "after_fetch",
    "move_to",
    "existing_mail",
    "poll_seconds",
    "template",
    "queue",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_username",
    "from_name",
    "dkim_selector",
)
"""The form's text inputs and choices, by the API's field names."""
CHECKS = ("tls_verify", "enabled", "acknowledge", "notifications")
BLANK_IS_NONE = (
    "port",
    "tls_ca",
    "move_to",
    "queue",
    "smtp_host",
    "smtp_port",
    "smtp_username",
    "from_name",
    "dkim_selector",
)
"""Inputs whose blank means "none" (the default port, no CA, no target folder, no queue, no
outgoing server, the incoming login, no sender name, no DKIM)."""
SECRETS = ("password", "smtp_password", "dkim_private_key")
"""Write-only inputs: never shown again; a blank one keeps what is stored."""
FIELDS = (*TEXTS, *CHECKS, *SECRETS)
WHOLE_FORM = "move_to"
"""Where a check of the whole form is shown: its one such check is that a move names its
target folder."""
NOTICES = ("created", "saved")


def _gone(request: Request, viewer: Viewer, gone: NotFound) -> HTMLResponse:
    return render(request, viewer, "message.html", status=404, message=gone.detail)


def _typed(form: FormData) -> dict[str, Any]:
    """What the form shows again after a problem: everything but the secrets."""
    typed: dict[str, Any] = {name: str(form.get(name, "")).strip() for name in TEXTS}
    typed.update({name: form.get(name) == "on" for name in CHECKS})
    return typed


def _body(form: FormData) -> dict[str, Any]:
    """The form as the API's body: blanks that mean none are None, and a blank password is
    left out (on a change it keeps the stored one)."""
    body = _typed(form)
    for name in BLANK_IS_NONE:
        body[name] = body[name] or None
    for name in ("smtp_security", "existing_mail"):
        if not body[name]:
            del body[name]  # not chosen: the default (STARTTLS, import), or as it is
    for name in SECRETS:
        value = str(form.get(name, ""))
        if value.strip():
            body[name] = value
    return body


def _beside(lines: list[str]) -> dict[str, list[str]]:
    """The form's problems (``field: message`` lines) by the field each is shown beside."""
    found: dict[str, list[str]] = {}
    for line in lines:
        field, _, message = line.partition(": ")
        if field not in FIELDS:
            field, message = (
                WHOLE_FORM,
                line.removeprefix("the form: ").removeprefix("Value error, "),
            )
        found.setdefault(field, []).append(message)
    return found


def _as_form(mailbox: Mailbox) -> dict[str, Any]:
    return {
        "name": mailbox.name,
        "address": mailbox.address,
        "host": mailbox.host,
        "port": str(mailbox.port),
        "security": mailbox.security,
        "tls_verify": mailbox.tls_verify,
        "tls_ca": mailbox.tls_ca or "",
        "username": mailbox.username,
        "auth": mailbox.auth,
        "folder": mailbox.folder,
        "after_fetch": mailbox.after_fetch,
        "move_to": mailbox.move_to or "",
        "existing_mail": mailbox.existing_mail,
        "poll_seconds": str(mailbox.poll_seconds),
        "template": mailbox.template,
        "queue": mailbox.queue or "",
        "enabled": mailbox.enabled,
        "smtp_host": mailbox.smtp_host or "",
        "smtp_port": "" if mailbox.smtp_port is None else str(mailbox.smtp_port),
        "smtp_security": mailbox.smtp_security or "starttls",
        "smtp_username": mailbox.smtp_username or "",
        "from_name": mailbox.from_name or "",
        "dkim_selector": mailbox.dkim_selector or "",
        "acknowledge": mailbox.acknowledge,
        "notifications": mailbox.notifications,
    }


NEW = {
    "security": "tls",
    "tls_verify": True,
    "auth": "password",
    "folder": "INBOX",
    "after_fetch": "leave",
    "existing_mail": "import",
    "poll_seconds": "60",
    "enabled": True,
    "smtp_security": "starttls",
    "acknowledge": True,
    "notifications": False,
}


async def _form_page(
    request: Request,
    viewer: Viewer,
    mailbox: Mailbox | None,
    *,
    form: dict[str, Any],
    errors: list[str] | None = None,
    checked: dict[str, Any] | None = None,
    polled: dict[str, Any] | None = None,
    status: int | None = None,
) -> Response:
    async with tenant_work(request, viewer) as uow:
        templates = await uow.templates.all()
        queues = await uow.queues.all()
    notice = request.query_params.get("done", "")
    return await _page(
        request,
        viewer,
        "admin_mailbox.html",
        status=status or (422 if errors else 200),
        mailbox=mailbox,
        form=form,
        errors=errors or [],
        beside=_beside(errors or []),
        templates=templates,
        queues=queues,
        checked=checked,
        polled=polled,
        notice=notice if notice in NOTICES else "",
    )


@router.get("/app/admin/mailboxes", response_class=HTMLResponse)
async def mailbox_list(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    async with tenant_work(request, viewer) as uow:
        found = await uow.mailboxes.all()
    deleted = request.query_params.get("done") == "deleted"
    return await _page(
        request, viewer, "admin_mailboxes.html", mailboxes=found, deleted=deleted, errors=[]
    )


@router.get("/app/admin/mailboxes/new", response_class=HTMLResponse)
async def new_mailbox(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _form_page(request, viewer, None, form=dict(NEW))


@router.post("/app/admin/mailboxes/new", response_class=HTMLResponse)
async def create_mailbox(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    try:
        spec = MailboxSpec.model_validate(_body(form))
        async with tenant_work(request, viewer) as uow:
            made = await mailboxes.create_mailbox(
                uow, viewer.principal, container_of(request).box, spec
            )
    except ValidationError as invalid:
        return await _form_page(request, viewer, None, form=_typed(form), errors=problems(invalid))
    except CasedeskError as refused:
        return await _form_page(request, viewer, None, form=_typed(form), errors=_refusal(refused))
    return RedirectResponse(f"/app/admin/mailboxes/{made.id}?done=created", status_code=303)


async def _found(request: Request, viewer: Viewer, mailbox_id: str) -> Mailbox:
    async with tenant_work(request, viewer) as uow:
        return await mailboxes.find_mailbox(uow, _id(mailbox_id))


@router.get("/app/admin/mailboxes/{mailbox_id}", response_class=HTMLResponse)
async def mailbox(request: Request, mailbox_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    try:
        found = await _found(request, viewer, mailbox_id)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return await _form_page(request, viewer, found, form=_as_form(found))


@router.post("/app/admin/mailboxes/{mailbox_id}", response_class=HTMLResponse)
async def change_mailbox(request: Request, mailbox_id: str, viewer: PersonDep) -> Response:
    """Set every field of the form; a blank port is the security's default one."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    body = _body(form)
    if body["port"] is None:
        del body["port"]
    try:
        found = await _found(request, viewer, mailbox_id)
        changes = MailboxChanges.model_validate(body)
        async with tenant_work(request, viewer) as uow:
            await mailboxes.update_mailbox(
                uow, viewer.principal, container_of(request).box, found.id, changes
            )
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except ValidationError as invalid:
        return await _form_page(request, viewer, found, form=_typed(form), errors=problems(invalid))
    except CasedeskError as refused:
        return await _form_page(request, viewer, found, form=_typed(form), errors=_refusal(refused))
    return RedirectResponse(f"/app/admin/mailboxes/{found.id}?done=saved", status_code=303)


@router.post("/app/admin/mailboxes/{mailbox_id}/test", response_class=HTMLResponse)
async def test_mailbox(request: Request, mailbox_id: str, viewer: PersonDep) -> Response:
    """Connect, log in and select the folder, as ``POST /api/v1/mailboxes/{id}/test``: the
    server's answer, or its refusal, on the mailbox's page."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        found = await _found(request, viewer, mailbox_id)
        poller = mailbox_poller(container_of(request))
        checked = await poller.test(viewer.principal.tenant_id, found.id)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return await _form_page(request, viewer, found, form=_as_form(found), checked=checked)


@router.post("/app/admin/mailboxes/{mailbox_id}/poll", response_class=HTMLResponse)
async def poll_mailbox(request: Request, mailbox_id: str, viewer: PersonDep) -> Response:
    """One run now, as ``POST /api/v1/mailboxes/{id}/poll``; a disabled mailbox is not
    polled and the page says so."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        found = await _found(request, viewer, mailbox_id)
        poller = mailbox_poller(container_of(request))
        report = await poller.poll(viewer.principal.tenant_id, found.id)
        after = await _found(request, viewer, mailbox_id)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    polled = {"disabled": True} if report is None else report.as_dict()
    return await _form_page(request, viewer, after, form=_as_form(after), polled=polled)


@router.get("/app/admin/mailboxes/{mailbox_id}/delete", response_class=HTMLResponse)
async def confirm_delete(request: Request, mailbox_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    try:
        found = await _found(request, viewer, mailbox_id)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return await _page(request, viewer, "admin_mailbox_delete.html", mailbox=found, errors=[])


@router.post("/app/admin/mailboxes/{mailbox_id}/delete")
async def delete_mailbox(request: Request, mailbox_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        deleted = _id(mailbox_id)
        async with tenant_work(request, viewer) as uow:
            await mailboxes.delete_mailbox(uow, viewer.principal, deleted)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return RedirectResponse("/app/admin/mailboxes?done=deleted", status_code=303)

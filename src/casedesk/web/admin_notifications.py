"""The admins' screens of the mail casedesk writes: each kind in each language, built-in or
the tenant's own; a template's page with its subject, text and optional HTML, previewed with
sample values, saved (after the check the API makes) or reset to the built-in one.

They run the API's activities (``activities/notification_templates.py``); a draft's problem
is shown beside the field it names, as the API's 422 names it."""

from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from casedesk.activities import notification_templates
from casedesk.domain import notifications
from casedesk.domain.notifications import KINDS, LANGUAGES, Kind, MailTemplate, RenderedMail
from casedesk.kit.errors import CasedeskError, NotFound
from casedesk.web.admin import _admin, _page
from casedesk.web.pages import Viewer, render
from casedesk.web.session import check_csrf, person, plain_text_only, tenant_work

router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
PersonDep = Annotated[Viewer, Depends(person)]
FIELDS = ("subject", "text", "html")
LIMITS = {"subject": 1_000, "text": 100_000, "html": 200_000}
"""The longest field the API takes."""
NOTICES = ("saved", "reset")
PATH = "/app/admin/notifications"


def _gone(request: Request, viewer: Viewer, what: str) -> HTMLResponse:
    return render(request, viewer, "message.html", status=404, message=f"no {what}")


def _chosen(kind: str, language: str) -> tuple[Kind, str]:
    if kind not in get_args(Kind):
        raise NotFound(f"notification kind {kind[:40]}")
    if language not in LANGUAGES:
        raise NotFound(f"notification language {language[:40]}")
    return kind, language  # type: ignore[return-value]


def _posted(form: FormData) -> dict[str, str]:
    return {name: str(form.get(name, "")) for name in FIELDS}


def _draft(fields: dict[str, str]) -> MailTemplate:
    """The form as a template: a blank HTML is none (the text, as HTML)."""
    return MailTemplate(fields["subject"], fields["text"], fields["html"] or None)


def _problems(fields: dict[str, str]) -> dict[str, list[str]]:
    """What the API's body would refuse before a render: a blank or too long field."""
    found: dict[str, list[str]] = {}
    for name in FIELDS:
        if name != "html" and not fields[name].strip():
            found.setdefault(name, []).append("write it first")
        if len(fields[name]) > LIMITS[name]:
            found.setdefault(name, []).append(f"at most {LIMITS[name]:,} characters")
    return found


def _beside(refused: CasedeskError) -> dict[str, list[str]]:
    field = refused.extra.get("field")
    name = field if field in FIELDS else "text"
    # Beside its field the message need not name it: "line 2: unexpected '}'".
    return {name: [refused.detail.removeprefix(f"{name}: ").removeprefix(f"{name}, ")]}


@router.get(PATH, response_class=HTMLResponse)
async def notification_list(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    async with tenant_work(request, viewer) as uow:
        custom = await notification_templates.customised(uow)
    rows = [
        {
            "kind": kind,
            "languages": [(language, (kind, language) in custom) for language in LANGUAGES],
        }
        for kind in KINDS
    ]
    return await _page(request, viewer, "admin_notifications.html", rows=rows, errors=[])


async def _form_page(
    request: Request,
    viewer: Viewer,
    kind: Kind,
    language: str,
    *,
    fields: dict[str, str] | None = None,
    beside: dict[str, list[str]] | None = None,
    preview: RenderedMail | None = None,
    status: int | None = None,
) -> Response:
    async with tenant_work(request, viewer) as uow:
        found = await notification_templates.effective(uow, kind, language)
    shown = fields or {
        "subject": found.template.subject,
        "text": found.template.text,
        "html": found.template.html or "",
    }
    notice = request.query_params.get("done", "")
    return await _page(
        request,
        viewer,
        "admin_notification.html",
        status=status or (422 if beside else 200),
        kind=kind,
        language=language,
        custom=found.custom,
        saved=found.saved,
        fields=shown,
        beside=beside or {},
        errors=[],
        preview=preview,
        variables=notifications.variables(kind),
        notice=notice if notice in NOTICES else "",
    )


@router.get(PATH + "/{kind}/{language}", response_class=HTMLResponse)
async def notification(request: Request, kind: str, language: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    try:
        chosen, chosen_language = _chosen(kind, language)
    except NotFound as gone:
        return _gone(request, viewer, gone.detail)
    return await _form_page(request, viewer, chosen, chosen_language)


async def _posted_draft(
    request: Request, viewer: Viewer, kind: str, language: str
) -> Response | tuple[Kind, str, dict[str, str]]:
    """The admin's posted draft of ``kind`` in ``language``; the page to answer instead when
    the kind is unknown or a field is missing."""
    _admin(viewer)
    await check_csrf(request, viewer)
    try:
        chosen, chosen_language = _chosen(kind, language)
    except NotFound as gone:
        return _gone(request, viewer, gone.detail)
    fields = _posted(await request.form())
    beside = _problems(fields)
    if beside:
        return await _form_page(
            request, viewer, chosen, chosen_language, fields=fields, beside=beside
        )
    return chosen, chosen_language, fields


@router.post(PATH + "/{kind}/{language}/preview", response_class=HTMLResponse)
async def preview_notification(
    request: Request, kind: str, language: str, viewer: PersonDep
) -> Response:
    """The form's draft rendered with sample values, on the same page, nothing saved."""
    posted = await _posted_draft(request, viewer, kind, language)
    if isinstance(posted, Response):
        return posted
    chosen, chosen_language, fields = posted
    try:
        shown = notifications.preview(chosen, chosen_language, _draft(fields))
    except CasedeskError as refused:
        beside = _beside(refused)
        return await _form_page(
            request, viewer, chosen, chosen_language, fields=fields, beside=beside
        )
    return await _form_page(request, viewer, chosen, chosen_language, fields=fields, preview=shown)


@router.post(PATH + "/{kind}/{language}", response_class=HTMLResponse)
async def save_notification(
    request: Request, kind: str, language: str, viewer: PersonDep
) -> Response:
    posted = await _posted_draft(request, viewer, kind, language)
    if isinstance(posted, Response):
        return posted
    chosen, chosen_language, fields = posted
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            await notification_templates.save_template(
                uow, viewer.principal, chosen, chosen_language, _draft(fields)
            )
    except CasedeskError as refused:
        return await _form_page(
            request, viewer, chosen, chosen_language, fields=fields, beside=_beside(refused)
        )
    return RedirectResponse(f"{PATH}/{chosen}/{chosen_language}?done=saved", status_code=303)


@router.post(PATH + "/{kind}/{language}/reset", response_class=HTMLResponse)
async def reset_notification(
    request: Request, kind: str, language: str, viewer: PersonDep
) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        chosen, chosen_language = _chosen(kind, language)
    except NotFound as gone:
        return _gone(request, viewer, gone.detail)
    async with tenant_work(request, viewer) as uow:
        await notification_templates.reset_template(uow, viewer.principal, chosen, chosen_language)
    return RedirectResponse(f"{PATH}/{chosen}/{chosen_language}?done=reset", status_code=303)

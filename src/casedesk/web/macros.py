"""The macros screen (one's own macros and, for admins, the shared ones) and the header's
availability toggle. Forms are read into the API's shapes and run the API's activities."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from casedesk.activities import macros
from casedesk.activities.availability import set_availability
from casedesk.domain.assignment import Availability
from casedesk.domain.identity.roles import Role
from casedesk.domain.macros import PLACEHOLDERS, MacroSpec
from casedesk.kit.errors import CasedeskError, NotFound
from casedesk.store.models import Macro
from casedesk.web.pages import Viewer, render
from casedesk.web.session import check_csrf, person, plain_text_only, tenant_work

router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
PersonDep = Annotated[Viewer, Depends(person)]
PRIORITY_LABELS = {"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"}


def _problems(invalid: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(part) for part in error['loc']) or 'the form'}: {error['msg']}"
        for error in invalid.errors()
    ]


def _spec(form: Any) -> MacroSpec:
    """The macro a form describes: its text, and one action per filled-in field."""
    actions: list[dict[str, Any]] = []
    if priority := str(form.get("priority", "")).strip():
        actions.append({"type": "set_priority", "priority": priority})
    for tag in str(form.get("tags", "")).split(","):
        if tag.strip():
            actions.append({"type": "add_tag", "tag": tag.strip()})
    if action := str(form.get("state_action", "")).strip():
        actions.append({"type": "apply_action", "action": action})
    if queue := str(form.get("queue", "")).strip():
        actions.append({"type": "transfer", "queue": queue})
    return MacroSpec.model_validate(
        {
            "name": str(form.get("name", "")),
            "body": str(form.get("body", "")).replace("\r\n", "\n"),
            "public": form.get("public") == "on",
            "shared": form.get("shared") == "on",
            "actions": actions,
        }
    )


def _form_of(macro: Macro) -> dict[str, str]:
    """A stored macro as the form's fields, for editing it."""
    fields = {
        "name": macro.name,
        "body": macro.body,
        "public": "on" if macro.public else "",
        "shared": "on" if macro.owner_id is None else "",
    }
    tags = [a["tag"] for a in macro.actions if a["type"] == "add_tag"]
    fields["tags"] = ", ".join(tags)
    for action in macro.actions:
        if action["type"] == "set_priority":
            fields["priority"] = action["priority"]
        elif action["type"] == "apply_action":
            fields["state_action"] = action["action"]
        elif action["type"] == "transfer":
            fields["queue"] = action["queue"]
    return fields


async def _macros_page(
    request: Request,
    viewer: Viewer,
    *,
    errors: list[str] | None = None,
    form: Any = None,
    editing: uuid.UUID | None = None,
) -> Response:
    assert viewer.principal is not None
    async with tenant_work(request, viewer) as uow:
        found = await uow.macros.visible_to(viewer.principal.user_id)
        queues = await uow.queues.all()
    return render(
        request,
        viewer,
        "macros.html",
        status=422 if errors else 200,
        own=[m for m in found if m.owner_id is not None],
        shared=[m for m in found if m.owner_id is None],
        is_admin=viewer.principal.role.at_least(Role.ADMIN),
        queues=queues,
        priorities=PRIORITY_LABELS,
        placeholders=PLACEHOLDERS,
        errors=errors or [],
        form=form or {},
        editing=editing,
    )


@router.get("/app/macros", response_class=HTMLResponse)
async def macros_screen(request: Request, viewer: PersonDep) -> Response:
    return await _macros_page(request, viewer)


@router.post("/app/macros")
async def create_macro(request: Request, viewer: PersonDep) -> Response:
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    try:
        spec = _spec(form)
        async with tenant_work(request, viewer) as uow:
            await macros.create_macro(uow, viewer.principal, spec)
    except ValidationError as invalid:
        return await _macros_page(request, viewer, errors=_problems(invalid), form=form)
    except CasedeskError as refused:
        if refused.status == 403:
            return render(request, viewer, "message.html", status=403, message=refused.detail)
        return await _macros_page(request, viewer, errors=[refused.detail], form=form)
    return RedirectResponse("/app/macros", status_code=303)


@router.get("/app/macros/{macro_id}", response_class=HTMLResponse)
async def edit_macro_screen(request: Request, macro_id: uuid.UUID, viewer: PersonDep) -> Response:
    """The macros screen with this macro's fields in the form, to change and save."""
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            macro = await macros.visible_macro(uow, macro_id, viewer.principal.user_id)
    except NotFound:
        return render(request, viewer, "message.html", status=404, message="no such macro")
    return await _macros_page(request, viewer, form=_form_of(macro), editing=macro.id)


@router.post("/app/macros/{macro_id}")
async def save_macro(request: Request, macro_id: uuid.UUID, viewer: PersonDep) -> Response:
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    try:
        spec = _spec(form)
        async with tenant_work(request, viewer) as uow:
            await macros.update_macro(uow, viewer.principal, macro_id, spec)
    except ValidationError as invalid:
        return await _macros_page(
            request, viewer, errors=_problems(invalid), form=form, editing=macro_id
        )
    except NotFound:
        return render(request, viewer, "message.html", status=404, message="no such macro")
    except CasedeskError as refused:
        if refused.status == 403:
            return render(request, viewer, "message.html", status=403, message=refused.detail)
        return await _macros_page(
            request, viewer, errors=[refused.detail], form=form, editing=macro_id
        )
    return RedirectResponse("/app/macros", status_code=303)


@router.post("/app/macros/{macro_id}/delete")
async def delete_macro(request: Request, macro_id: uuid.UUID, viewer: PersonDep) -> Response:
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            await macros.delete_macro(uow, viewer.principal, macro_id)
    except NotFound:
        return render(request, viewer, "message.html", status=404, message="no such macro")
    except CasedeskError as refused:
        return render(
            request, viewer, "message.html", status=refused.status, message=refused.detail
        )
    return RedirectResponse("/app/macros", status_code=303)


@router.post("/app/me/availability")
async def availability(request: Request, viewer: PersonDep) -> Response:
    """The header's toggle: available or away, then back to the page it was pressed on."""
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    wanted = str(form.get("availability", ""))
    if wanted not in {a.value for a in Availability}:
        return render(
            request, viewer, "message.html", status=422, message="availability: available or away"
        )
    async with tenant_work(request, viewer) as uow:
        await set_availability(uow, viewer.principal, Availability(wanted))
    back = str(form.get("back", ""))
    return RedirectResponse(back if back.startswith("/app/") else "/app/cases", status_code=303)

"""The admins' screens: queues, state machines (an editor that draws the draft and lists
every problem before publishing, with the versions) and templates. Each form is read into
the API's input shapes (``domain/configuration.py``) and runs the API's activity."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from casedesk.activities import configuration
from casedesk.domain.assignment import AssignmentMode
from casedesk.domain.configuration import MachineIn, QueueChanges, QueueIn, TemplateIn
from casedesk.domain.identity.roles import Role
from casedesk.domain.statemachine.definition import Definition, validate_definition
from casedesk.kit.errors import CasedeskError, NotFound
from casedesk.web.graph import svg
from casedesk.web.pages import Viewer, problems, render
from casedesk.web.session import (
    check_csrf,
    person,
    plain_text_only,
    tenant_work,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
PersonDep = Annotated[Viewer, Depends(person)]
NEW_MACHINE = {
    "states": [
        {"code": "new", "name": "New", "type": "start"},
        {"code": "solved", "name": "Solved", "type": "end"},
    ],
    "transitions": [{"action": "solve", "name": "Solve", "from": "new", "to": "solved"}],
}


ASSIGNMENT_LABELS = {
    AssignmentMode.MANUAL.value: "Manual",
    AssignmentMode.ROUND_ROBIN.value: "Round robin",
    AssignmentMode.LEAST_LOADED.value: "Least loaded",
}
"""What each assignment mode is called on the queues screen (the template translates these)."""


class NotAnAdmin(CasedeskError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


def _admin(viewer: Viewer) -> None:
    assert viewer.principal is not None
    if not viewer.principal.role.at_least(Role.ADMIN):
        raise NotAnAdmin("this screen is for admins")


async def _page(
    request: Request, viewer: Viewer, template: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    return render(request, viewer, template, status=status, section="admin", **context)


@router.get("/app/admin", response_class=HTMLResponse)
async def admin_home(viewer: PersonDep) -> Response:
    _admin(viewer)
    return RedirectResponse("/app/admin/queues", status_code=303)


# --- queues --------------------------------------------------------------------------------


async def _queues_page(
    request: Request, viewer: Viewer, *, errors: list[str] | None = None, form: Any = None
) -> Response:
    async with tenant_work(request, viewer) as uow:
        queues = await uow.queues.all()
        members = await uow.queues.members()
        workers = await uow.assignment.workers()
    return await _page(
        request,
        viewer,
        "admin_queues.html",
        status=422 if errors else 200,
        queues=queues,
        members=members,
        workers=workers,
        errors=errors or [],
        form=form or {},
        modes=ASSIGNMENT_LABELS,
    )


@router.get("/app/admin/queues", response_class=HTMLResponse)
async def queues(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _queues_page(request, viewer)


@router.post("/app/admin/queues")
async def create_queue(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    form = await request.form()
    assert viewer.principal is not None
    try:
        body = QueueIn(
            code=str(form.get("code", "")).strip(),
            name=str(form.get("name", "")),
            assignment=str(form.get("assignment", "manual")),
        )
        async with tenant_work(request, viewer) as uow:
            await configuration.create_queue(
                uow, viewer.principal, code=body.code, name=body.name, assignment=body.assignment
            )
    except ValidationError as invalid:
        return await _queues_page(request, viewer, errors=problems(invalid), form=form)
    except CasedeskError as refused:
        return await _queues_page(request, viewer, errors=[refused.detail], form=form)
    return RedirectResponse("/app/admin/queues", status_code=303)


@router.post("/app/admin/queues/{code}/assignment")
async def queue_assignment(request: Request, code: str, viewer: PersonDep) -> Response:
    """Change how a queue's cases are assigned (the API's ``PATCH /queues/{code}``)."""
    _admin(viewer)
    await check_csrf(request, viewer)
    form = await request.form()
    assert viewer.principal is not None
    try:
        changes = QueueChanges(assignment=str(form.get("assignment", "")))
        async with tenant_work(request, viewer) as uow:
            await configuration.update_queue(uow, viewer.principal, code, changes)
    except ValidationError as invalid:
        return await _queues_page(request, viewer, errors=problems(invalid))
    except NotFound:
        return render(request, viewer, "message.html", status=404, message="no such queue")
    except CasedeskError as refused:
        return await _queues_page(request, viewer, errors=[refused.detail])
    return RedirectResponse("/app/admin/queues", status_code=303)


@router.post("/app/admin/queues/{code}/members")
async def queue_members(request: Request, code: str, viewer: PersonDep) -> Response:
    """Who works a queue (the API's ``PUT /queues/{code}/members``)."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    chosen = [str(value) for value in (await request.form()).getlist("user_id")]
    try:
        user_ids = [uuid.UUID(value) for value in chosen]
        async with tenant_work(request, viewer) as uow:
            await configuration.set_queue_members(uow, viewer.principal, code, user_ids)
    except ValueError:
        return await _queues_page(request, viewer, errors=["user_id: choose people from the list"])
    except NotFound:
        return render(request, viewer, "message.html", status=404, message="no such queue")
    except CasedeskError as refused:
        return await _queues_page(request, viewer, errors=[refused.detail])
    return RedirectResponse("/app/admin/queues", status_code=303)


# --- state machines ------------------------------------------------------------------------


@router.get("/app/admin/machines", response_class=HTMLResponse)
async def machines(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    async with tenant_work(request, viewer) as uow:
        found = await uow.machines.all()
    return await _page(
        request,
        viewer,
        "admin_machines.html",
        machines=found,
        starter=json.dumps(NEW_MACHINE, indent=2, ensure_ascii=False),
        errors=[],
        form={},
    )


async def _machine_page(
    request: Request,
    viewer: Viewer,
    code: str,
    *,
    text: str | None = None,
    errors: list[str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    async with tenant_work(request, viewer) as uow:
        try:
            machine = await configuration.machine_by_code(uow, code)
        except NotFound as gone:
            return render(request, viewer, "message.html", status=404, message=gone.detail)
        versions = await uow.machines.versions(machine.id)
    definition = Definition.model_validate(machine.draft)
    problems = validate_definition(definition)
    return await _page(
        request,
        viewer,
        "admin_machine.html",
        status=status,
        machine=machine,
        definition=definition,
        drawing=svg(definition, machine.name),
        problems=problems,
        versions=versions,
        text=text if text is not None else json.dumps(machine.draft, indent=2, ensure_ascii=False),
        errors=errors or [],
        notice=notice,
    )


@router.get("/app/admin/machines/{code}", response_class=HTMLResponse)
async def machine(request: Request, code: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    notice = {"saved": "saved", "published": "published"}.get(request.query_params.get("done", ""))
    return await _machine_page(request, viewer, code, notice=notice)


@router.post("/app/admin/machines")
async def save_machine(request: Request, viewer: PersonDep) -> Response:
    """Save a draft (a new machine, or the one named); it may have problems: they are shown."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    code, name = str(form.get("code", "")).strip(), str(form.get("name", ""))
    text = str(form.get("definition", ""))
    try:
        document = orjson.loads(text)
        if not isinstance(document, dict):
            raise ValueError("the definition is a JSON object with states and transitions")
        body = MachineIn.model_validate(document | {"code": code, "name": name})
        async with tenant_work(request, viewer) as uow:
            await configuration.save_machine_draft(
                uow,
                viewer.principal,
                code=body.code,
                name=body.name,
                definition=Definition(states=body.states, transitions=body.transitions),
            )
    except (ValueError, ValidationError, CasedeskError) as refused:
        if isinstance(refused, ValidationError):
            errors = problems(refused)
        elif isinstance(refused, CasedeskError):
            errors = [refused.detail]
        else:
            errors = [f"the definition is not JSON: {refused}"]
        async with tenant_work(request, viewer) as uow:
            exists = await uow.machines.by_code(code) is not None
        if exists:
            return await _machine_page(request, viewer, code, text=text, errors=errors, status=422)
        async with tenant_work(request, viewer) as uow:
            found = await uow.machines.all()
        return await _page(
            request,
            viewer,
            "admin_machines.html",
            status=422,
            machines=found,
            starter=text,
            errors=errors,
            form={"code": code, "name": name},
        )
    return RedirectResponse(f"/app/admin/machines/{body.code}?done=saved", status_code=303)


@router.post("/app/admin/machines/{code}/publish")
async def publish_machine(request: Request, code: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            await configuration.publish_machine(uow, viewer.principal, code)
    except NotFound as gone:
        return render(request, viewer, "message.html", status=404, message=gone.detail)
    except CasedeskError as refused:
        return await _machine_page(request, viewer, code, errors=[refused.detail], status=422)
    return RedirectResponse(f"/app/admin/machines/{code}?done=published", status_code=303)


# --- templates -----------------------------------------------------------------------------


async def _templates_page(
    request: Request, viewer: Viewer, *, errors: list[str] | None = None, form: Any = None
) -> Response:
    async with tenant_work(request, viewer) as uow:
        templates = await uow.templates.all()
        machines = [m for m in await uow.machines.all() if m.latest_version > 0]
        queues = await uow.queues.all()
        machine_codes = {m.id: m.code for m in await uow.machines.all()}
        queue_codes = {q.id: q.code for q in queues}
    return await _page(
        request,
        viewer,
        "admin_templates.html",
        status=422 if errors else 200,
        templates=templates,
        machines=machines,
        queues=queues,
        machine_codes=machine_codes,
        queue_codes=queue_codes,
        errors=errors or [],
        form=form or {"form_schema": '{\n  "type": "object",\n  "properties": {}\n}'},
    )


@router.get("/app/admin/templates", response_class=HTMLResponse)
async def templates(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _templates_page(request, viewer)


@router.post("/app/admin/templates")
async def create_template(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    try:
        schema = orjson.loads(str(form.get("form_schema", "")) or "{}")
        body = TemplateIn.model_validate(
            {
                "code": str(form.get("code", "")).strip(),
                "name": str(form.get("name", "")),
                "state_machine": str(form.get("state_machine", "")),
                "default_queue": str(form.get("default_queue", "")),
                "default_priority": str(form.get("default_priority", "normal")),
                "form_schema": schema,
                "public": form.get("public") == "on",
            }
        )
        async with tenant_work(request, viewer) as uow:
            await configuration.save_template(
                uow,
                viewer.principal,
                code=body.code,
                name=body.name,
                state_machine=body.state_machine,
                form_schema=body.form_schema,
                default_queue=body.default_queue,
                default_priority=body.default_priority,
                public=body.public,
                create=True,
            )
    except orjson.JSONDecodeError as bad:
        return await _templates_page(
            request, viewer, errors=[f"form_schema: not JSON: {bad}"], form=form
        )
    except ValidationError as invalid:
        return await _templates_page(request, viewer, errors=problems(invalid), form=form)
    except CasedeskError as refused:
        return await _templates_page(request, viewer, errors=[refused.detail], form=form)
    return RedirectResponse("/app/admin/templates", status_code=303)

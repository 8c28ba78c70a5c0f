"""The admins' SLA screen: policies with their targets per template and priority, each with
the business-hours calendar its clocks count in (calendars belong to a policy, or to a time
rule, not to the tenant). The form is read into the API's ``SlaPolicySpec`` and runs the
API's activity (``activities/sla_policies.py``)."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from casedesk.activities import sla_policies
from casedesk.domain.automation.calendar import Calendar, Weekday
from casedesk.domain.automation.sla import SlaPolicySpec
from casedesk.domain.cases.priority import Priority
from casedesk.kit.errors import CasedeskError, NotFound
from casedesk.store.models import SlaPolicy
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.web.admin import _admin
from casedesk.web.pages import Viewer, problems, render
from casedesk.web.session import check_csrf, person, plain_text_only, tenant_work

router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
PersonDep = Annotated[Viewer, Depends(person)]
WEEKDAYS = tuple(day.value for day in Weekday)
PRIORITIES = tuple(priority.value for priority in Priority)
ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Sydney",
)
"""Suggested in the time zone's field; any IANA name is accepted, as the API does."""


# --- a calendar as a form: shared with the time rules' form -------------------------------


def _clock(value: str) -> str:
    """``09:00:00`` as a person writes it (``09:00``); seconds only when there are some."""
    return value[:5] if value.endswith(":00") and len(value) == 8 else value


def calendar_fields(calendar: dict[str, Any] | None) -> dict[str, Any]:
    """A stored calendar (the API's JSON form) as its form shows it: the time zone, each
    weekday's hours as ``09:00-12:00, 13:00-17:00`` (blank: closed), holidays one a line.
    No calendar shows the API's default, open round the clock."""
    document = calendar or Calendar.always().model_dump(mode="json")
    week = document.get("week", {})
    return {
        "time_zone": document.get("time_zone", "UTC"),
        "days": {
            day: ", ".join(
                f"{_clock(part['start'])}-{_clock(part['end'])}" for part in week.get(day, [])
            )
            for day in WEEKDAYS
        },
        "holidays": "\n".join(document.get("holidays", [])),
    }


def calendar_posted(form: FormData) -> dict[str, Any]:
    """The calendar's fields as posted (``cal-time_zone``, ``cal-mon`` …, ``cal-holidays``)."""
    return {
        "time_zone": str(form.get("cal-time_zone", "")).strip(),
        "days": {day: str(form.get(f"cal-{day}", "")) for day in WEEKDAYS},
        "holidays": str(form.get("cal-holidays", "")),
    }


def calendar_document(fields: dict[str, Any]) -> dict[str, Any]:
    """The calendar's fields as the API's JSON body: the times and dates are left for the
    API's model to read, so a mistake gets its message (``calendar.week.mon.0.end``)."""
    week: dict[str, list[dict[str, str]]] = {}
    for day, text in fields["days"].items():
        pieces = [piece.strip() for piece in re.split(r"[,;]", text) if piece.strip()]
        if pieces:
            week[day] = [
                {"start": start.strip(), "end": end.strip()}
                for start, _, end in (piece.partition("-") for piece in pieces)
            ]
    holidays = [day for day in re.split(r"[\s,]+", fields["holidays"]) if day]
    return {"time_zone": fields["time_zone"], "week": week, "holidays": holidays}


def invalid_inputs(places: list[str]) -> set[str]:
    """The form's inputs that the problems' places name (``calendar.week.mon.0.end`` is the
    input ``cal-mon``), so the page marks them ``aria-invalid``."""
    names = set()
    for place in places:
        parts = place.split(".")
        if parts[0] == "calendar" and len(parts) > 1:
            names.add(f"cal-{parts[2] if parts[1] == 'week' and len(parts) > 2 else parts[1]}")
        else:
            names.add(parts[0])
    return names


def refusal(refused: CasedeskError) -> list[str]:
    """An activity's refusal as the form's problems, each naming its field when it has one."""
    listed = refused.extra.get("errors")
    if listed:
        return [f"{error['field']}: {error['message']}" for error in listed]
    field = refused.extra.get("field")
    return [f"{field}: {refused.detail}" if field else refused.detail]


# --- SLA policies ---------------------------------------------------------------------------


def _policy_fields(
    policy: SlaPolicy | None, template_codes: dict[uuid.UUID, str]
) -> dict[str, Any]:
    if policy is None:
        return {
            "name": "",
            "template": "",
            "priority": "",
            "first_response_minutes": "",
            "resolution_minutes": "",
            "warning_percent": str(SlaPolicySpec.model_fields["warning_percent"].default),
            "calendar": calendar_fields(None),
        }
    return {
        "name": policy.name,
        "template": template_codes.get(policy.template_id, "") if policy.template_id else "",
        "priority": Priority.from_rank(policy.priority).value
        if policy.priority is not None
        else "",
        "first_response_minutes": _number(policy.first_response_minutes),
        "resolution_minutes": _number(policy.resolution_minutes),
        "warning_percent": str(policy.warning_percent),
        "calendar": calendar_fields(policy.calendar),
    }


def _number(value: int | None) -> str:
    return "" if value is None else str(value)


def _posted(form: FormData) -> dict[str, Any]:
    text = {
        key: str(form.get(key, "")).strip()
        for key in (
            "name",
            "template",
            "priority",
            "first_response_minutes",
            "resolution_minutes",
            "warning_percent",
        )
    }
    return text | {"calendar": calendar_posted(form)}


def _spec(fields: dict[str, Any]) -> SlaPolicySpec:
    """The form's fields as the API's body: a blank choice or number is "none" (any
    template, any priority, no such target), a blank warning the API's default."""
    document: dict[str, Any] = {"name": fields["name"]} | {
        key: fields[key] or None
        for key in ("template", "priority", "first_response_minutes", "resolution_minutes")
    }
    if fields["warning_percent"]:
        document["warning_percent"] = fields["warning_percent"]
    document["calendar"] = calendar_document(fields["calendar"])
    return SlaPolicySpec.model_validate(document)


async def _templates(uow: UnitOfWork) -> dict[uuid.UUID, str]:
    return {template.id: template.code for template in await uow.templates.all()}


async def _list_page(request: Request, viewer: Viewer) -> Response:
    async with tenant_work(request, viewer) as uow:
        policies = await uow.sla.policies()
        codes = await _templates(uow)
    rows = [
        {"id": policy.id} | _policy_fields(policy, codes)
        for policy in sorted(policies, key=lambda p: p.name.casefold())
    ]
    return render(
        request,
        viewer,
        "admin_sla.html",
        section="admin",
        policies=rows,
        notice=request.query_params.get("done"),
        errors=[],
    )


async def _form_page(
    request: Request,
    viewer: Viewer,
    fields: dict[str, Any],
    *,
    policy_id: uuid.UUID | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    async with tenant_work(request, viewer) as uow:
        codes = sorted((await _templates(uow)).values())
    return render(
        request,
        viewer,
        "admin_sla_policy.html",
        status=status,
        section="admin",
        policy_id=policy_id,
        fields=fields,
        templates=codes,
        priorities=PRIORITIES,
        weekdays=WEEKDAYS,
        zones=ZONES,
        errors=errors or [],
        invalid=invalid_inputs([error.partition(":")[0] for error in errors or []]),
    )


def _gone(request: Request, viewer: Viewer, gone: NotFound) -> Response:
    return render(request, viewer, "message.html", status=404, message=gone.detail)


def _policy_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(f"SLA policy {text[:40]} not found") from None


@router.get("/app/admin/sla", response_class=HTMLResponse)
async def policies(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _list_page(request, viewer)


@router.get("/app/admin/sla/new", response_class=HTMLResponse)
async def new_policy(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _form_page(request, viewer, _policy_fields(None, {}))


@router.get("/app/admin/sla/{policy_id}", response_class=HTMLResponse)
async def policy(request: Request, policy_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    try:
        async with tenant_work(request, viewer) as uow:
            found = await uow.sla.get(_policy_id(policy_id))
            fields = _policy_fields(found, await _templates(uow))
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return await _form_page(request, viewer, fields, policy_id=found.id)


async def _save(request: Request, viewer: Viewer, policy_id: uuid.UUID | None) -> Response:
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    fields = _posted(await request.form())
    try:
        spec = _spec(fields)
        async with tenant_work(request, viewer) as uow:
            await sla_policies.save_policy(uow, viewer.principal, spec, policy_id)
    except ValidationError as invalid:
        errors = problems(invalid)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except CasedeskError as refused:
        errors = refusal(refused)
    else:
        return RedirectResponse("/app/admin/sla?done=saved", status_code=303)
    return await _form_page(request, viewer, fields, policy_id=policy_id, errors=errors, status=422)


@router.post("/app/admin/sla/new")
async def create_policy(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _save(request, viewer, None)


@router.post("/app/admin/sla/{policy_id}")
async def replace_policy(request: Request, policy_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    try:
        chosen = _policy_id(policy_id)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return await _save(request, viewer, chosen)


@router.post("/app/admin/sla/{policy_id}/delete")
async def delete_policy(request: Request, policy_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        chosen = _policy_id(policy_id)
        async with tenant_work(request, viewer) as uow:
            await sla_policies.delete_policy(uow, viewer.principal, chosen)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except CasedeskError as refused:
        async with tenant_work(request, viewer) as uow:
            fields = _policy_fields(await uow.sla.get(chosen), await _templates(uow))
        return await _form_page(
            request, viewer, fields, policy_id=chosen, errors=refusal(refused), status=409
        )
    return RedirectResponse("/app/admin/sla?done=deleted", status_code=303)

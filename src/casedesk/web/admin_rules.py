"""The admins' rules screen: event rules and time rules in their order, each edited in a
builder of condition rows (field, operator, value; all or any of them) and action rows (a
kind and its parameters).

The builder works without JavaScript: "add a condition", "add an action" and each row's
"remove" are submit buttons that post the form as it is and get it back with the rows
changed, nothing saved. "Save" reads the rows into the API's body (``RuleSpec`` or
``TimeRuleSpec``) and runs the API's activity (``activities/rules.py``), so a mistake gets
the API's message, named by its place (``conditions.all.1.value``) and shown at its row. What
the builder offers is read from the domain: the case events, the operators, the action kinds
and their parameters, the time rules' moments.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from casedesk.activities.rules import EVENT_RULES, TIME_RULES, RuleKind
from casedesk.domain.automation.conditions import (
    ACTOR_FIELDS,
    CASE_FIELDS,
    CUSTOMER_FIELDS,
    Op,
)
from casedesk.domain.automation.rules import Action, RuleSpec
from casedesk.domain.automation.time_rules import Since, TimeRuleSpec
from casedesk.domain.events import CASE, EVENTS
from casedesk.kit.errors import CasedeskError, NotFound
from casedesk.store.models import Rule, TimeRule
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.web import admin_sla
from casedesk.web.admin import _admin
from casedesk.web.pages import Viewer, render
from casedesk.web.session import check_csrf, person, plain_text_only, tenant_work

router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
router.include_router(admin_sla.router)
PersonDep = Annotated[Viewer, Depends(person)]
OPS: tuple[str, ...] = get_args(Op)
MOMENTS: tuple[str, ...] = get_args(Since)
ACTION_KINDS: dict[str, tuple[str, ...]] = {
    get_args(model.model_fields["type"].annotation)[0]: tuple(
        name for name in model.model_fields if name != "type"
    )
    for model in get_args(get_args(Action)[0])
}
"""Each action kind the domain has, with its parameters, in the order the domain lists them."""
_MODELS = {get_args(m.model_fields["type"].annotation)[0]: m for m in get_args(get_args(Action)[0])}
BOOLEAN_PARAMETERS = frozenset({"public"})
OPTIONAL_PARAMETERS = frozenset(
    (kind, name)
    for kind, model in _MODELS.items()
    for name, field in model.model_fields.items()
    if not field.is_required() and field.default is None
)
"""Parameters a blank input leaves out, as null (an assign with no user and no strategy)."""


def _literal_values(annotation: Any) -> tuple[str, ...]:
    """The values a ``Literal`` parameter (or an optional one) may take; none for others."""
    if get_origin(annotation) is Literal:
        return tuple(str(value) for value in get_args(annotation))
    return tuple(value for part in get_args(annotation) for value in _literal_values(part))


PARAMETER_VALUES = {
    (kind, name): values
    for kind, model in _MODELS.items()
    for name, field in model.model_fields.items()
    if name != "type" and (values := _literal_values(field.annotation))
}
"""The fixed choices of a parameter, as the domain's ``Literal`` names them (a strategy)."""
MAX_ROWS = 100
"""Row numbers past this are not read; the spec's own limits (50 conditions, 20 actions)
are the API's to name."""
Problems = list[tuple[str, str]]
"""(where, what): ``conditions.all.1.value`` and its message."""


@dataclass(frozen=True, slots=True)
class Screen:
    """One kind of rule on the screen: where its pages are and what its form says."""

    kind: RuleKind[Any, Any]
    spec: type[RuleSpec] | type[TimeRuleSpec]
    path: str
    timed: bool


EVENT_SCREEN = Screen(EVENT_RULES, RuleSpec, "/app/admin/rules", timed=False)
TIME_SCREEN = Screen(TIME_RULES, TimeRuleSpec, "/app/admin/time-rules", timed=True)


# --- a rule as its form ---------------------------------------------------------------------


def _looks_like_json(text: str) -> bool:
    return text[:1] in ('"', "[", "{")


def value_of(text: str) -> tuple[Any, bool]:
    """A condition's value as typed: JSON when it reads as JSON as the API reads it (``3``,
    ``true``, ``null``, ``["high", "urgent"]``, ``"123"``), else the text itself; blank is
    null. Text that begins as JSON does (a quote, a bracket, a brace) but does not read is
    refused; ``NaN`` is not JSON, so it is the text ``NaN``."""
    typed = text.strip()
    if not typed:
        return None, True
    try:
        return orjson.loads(typed), True
    except orjson.JSONDecodeError:
        return typed, not _looks_like_json(typed)


def value_text(value: Any) -> str:
    """What ``value_of`` reads back as ``value``: plain text stays plain."""
    if value is None:
        return ""
    plain = isinstance(value, str) and value == value.strip() and not _looks_like_json(value)
    if plain and value_of(value)[0] == value:
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _comparison_row(node: dict[str, Any]) -> dict[str, str]:
    return {
        "field": str(node.get("field", "")),
        "op": str(node.get("op", "")),
        "value": value_text(node.get("value")),
    }


def _condition_rows(tree: dict[str, Any]) -> tuple[str, list[dict[str, str]], str | None]:
    """A stored condition tree as (all/any, rows); a tree nested deeper than the builder's
    one level is kept as JSON to edit as it is, so saving never flattens it."""
    if "field" in tree:
        return "all", [_comparison_row(tree)], None
    for match in ("all", "any"):
        parts = tree.get(match)
        if isinstance(parts, list) and all("field" in part for part in parts):
            return match, [_comparison_row(part) for part in parts], None
    return "all", [], json.dumps(tree, indent=2, ensure_ascii=False)


def _parameter_text(value: Any) -> str:
    if value is None or value is False:
        return ""
    return "on" if value is True else str(value)


def _action_row(action: dict[str, Any]) -> dict[str, Any]:
    kind = str(action.get("type", ""))
    names = ACTION_KINDS.get(kind, tuple(key for key in action if key != "type"))
    return {"type": kind, "params": {name: _parameter_text(action.get(name)) for name in names}}


def _blank_action(kind: str) -> dict[str, Any]:
    return {"type": kind, "params": dict.fromkeys(ACTION_KINDS[kind], "")}


def blank_fields(screen: Screen) -> dict[str, Any]:
    """A new rule's form: one empty condition row and one action row."""
    fields: dict[str, Any] = {
        "name": "",
        "enabled": True,
        "position": "",
        "match": "all",
        "conditions": [{"field": "", "op": "eq", "value": ""}],
        "conditions_json": None,
        "actions": [_blank_action(next(iter(ACTION_KINDS)))],
    }
    if screen.timed:
        return fields | {
            "since": MOMENTS[0],
            "hours": "",
            "minutes": "",
            "use_calendar": False,
            "calendar": admin_sla.calendar_fields(None),
        }
    return fields | {"on": [], "stop": False}


def stored_fields(screen: Screen, rule: Rule | TimeRule) -> dict[str, Any]:
    match, rows, text = _condition_rows(rule.conditions)
    fields: dict[str, Any] = {
        "name": rule.name,
        "enabled": rule.enabled,
        "position": str(rule.position),
        "match": match,
        "conditions": rows,
        "conditions_json": text,
        "actions": [_action_row(action) for action in rule.actions],
    }
    if isinstance(rule, TimeRule):
        return fields | {
            "since": rule.since,
            "hours": str(rule.hours),
            "minutes": str(rule.minutes),
            "use_calendar": rule.calendar is not None,
            "calendar": admin_sla.calendar_fields(rule.calendar),
        }
    return fields | {"on": list(rule.on), "stop": rule.stop}


def _row_numbers(form: FormData, pattern: str) -> list[int]:
    found = {int(m.group(1)) for key in form if (m := re.fullmatch(pattern, key))}
    return sorted(number for number in found if number < MAX_ROWS)


def posted_fields(screen: Screen, form: FormData) -> dict[str, Any]:
    """The form as posted, rows in their order; nothing is read into a rule yet."""

    def text(key: str) -> str:
        return str(form.get(key, ""))

    conditions = [
        {
            "field": text(f"c-{n}-field").strip(),
            "op": text(f"c-{n}-op"),
            "value": text(f"c-{n}-value"),
        }
        for n in _row_numbers(form, r"c-(\d+)-field")
    ]
    actions = []
    for n in _row_numbers(form, r"a-(\d+)-type"):
        kind = text(f"a-{n}-type")
        names = ACTION_KINDS.get(kind, ())
        actions.append({"type": kind, "params": {name: text(f"a-{n}-{name}") for name in names}})
    fields: dict[str, Any] = {
        "name": text("name"),
        "enabled": form.get("enabled") == "on",
        "position": text("position").strip(),
        "match": "any" if form.get("match") == "any" else "all",
        "conditions": conditions,
        "conditions_json": text("conditions_json") if "conditions_json" in form else None,
        "actions": actions,
    }
    if screen.timed:
        return fields | {
            "since": text("since"),
            "hours": text("hours").strip(),
            "minutes": text("minutes").strip(),
            "use_calendar": form.get("use_calendar") == "on",
            "calendar": admin_sla.calendar_posted(form),
        }
    return fields | {
        "on": [str(value) for value in form.getlist("on")],
        "stop": form.get("stop") == "on",
    }


def rebuilt(fields: dict[str, Any], button: str, new_action: str) -> dict[str, Any]:
    """The form after one of the builder's buttons: a row more, or a row less."""
    conditions, actions = list(fields["conditions"]), list(fields["actions"])
    if button == "add-condition":
        conditions.append({"field": "", "op": "eq", "value": ""})
    elif button == "add-action" and new_action in ACTION_KINDS:
        actions.append(_blank_action(new_action))
    elif (dropped := re.fullmatch(r"drop-([ca])-(\d+)", button)) is not None:
        rows = conditions if dropped.group(1) == "c" else actions
        if int(dropped.group(2)) < len(rows):
            del rows[int(dropped.group(2))]
    return fields | {"conditions": conditions, "actions": actions}


def _parameter(kind: str, name: str, text: str) -> Any:
    """An action's parameter as the API's body has it: a box is true or false, a blank
    optional one is null (no assignee and no strategy unassigns); everything else is the
    text, for the API's model to read."""
    if name in BOOLEAN_PARAMETERS:
        return text == "on"
    if (kind, name) in OPTIONAL_PARAMETERS and not text.strip():
        return None
    return text


def document_of(screen: Screen, fields: dict[str, Any]) -> tuple[dict[str, Any], Problems]:
    """The form as the API's JSON body, and the values that do not read (not JSON).
    Condition rows without a field are left out: they were added and not filled in."""
    problems: Problems = []
    if fields["conditions_json"] is not None:
        try:
            conditions = orjson.loads(fields["conditions_json"] or "{}")
        except orjson.JSONDecodeError as bad:
            problems.append(("conditions", f"not JSON: {bad}"))
            conditions = {"all": []}
    else:
        comparisons = []
        for index, row in enumerate(fields["conditions"]):
            value, readable = value_of(row["value"])
            if not readable:
                problems.append(
                    (
                        f"conditions.{fields['match']}.{index}.value",
                        'not JSON; quote text that begins with ", [ or {',
                    )
                )
            comparisons.append({"field": row["field"], "op": row["op"], "value": value})
        conditions = {fields["match"]: comparisons}
    document: dict[str, Any] = {
        "name": fields["name"],
        "enabled": fields["enabled"],
        "conditions": conditions,
        "actions": [
            {"type": row["type"]}
            | {name: _parameter(row["type"], name, text) for name, text in row["params"].items()}
            for row in fields["actions"]
        ],
    }
    if fields["position"]:
        document["position"] = fields["position"]
    if screen.timed:
        document |= {"since": fields["since"]}
        document |= {key: fields[key] for key in ("hours", "minutes") if fields[key]}
        document["calendar"] = (
            admin_sla.calendar_document(fields["calendar"]) if fields["use_calendar"] else None
        )
    else:
        document |= {"on": fields["on"], "stop": fields["stop"]}
    return document, problems


def located(invalid: ValidationError) -> Problems:
    return [
        (".".join(str(part) for part in error["loc"]) or "the form", error["msg"])
        for error in invalid.errors()
    ]


def refused_at(refused: CasedeskError) -> Problems:
    listed = refused.extra.get("errors")
    if listed:
        return [(str(error["field"]), str(error["message"])) for error in listed]
    field = refused.extra.get("field")
    return [(str(field) if field else "", refused.detail)]


def by_row(problems: Problems) -> dict[str, list[str]]:
    """Each problem of a condition or action row under the row's key (``c-1``, ``a-0``)."""
    rows: dict[str, list[str]] = {}
    for where, message in problems:
        condition = re.match(r"conditions\.(?:all|any)\.(\d+)(?:\.(\w+))?", where)
        action = re.match(r"actions\.(\d+)(?:\.(\w+))?", where)
        found = condition or action
        if found is None:
            continue
        key = f"{'c' if condition else 'a'}-{found.group(1)}"
        rows.setdefault(key, []).append(f"{found.group(2) or ''}: {message}".lstrip(": "))
    return rows


# --- pages ----------------------------------------------------------------------------------


def _rule_id(screen: Screen, text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(f"{screen.kind.label} {text[:40]} not found") from None


def _gone(request: Request, viewer: Viewer, gone: NotFound) -> Response:
    return render(request, viewer, "message.html", status=404, message=gone.detail)


def _suggested_fields(screen: Screen) -> list[str]:
    """What a condition can compare, offered as the field's suggestions (``case.form.<key>``
    is typed by hand)."""
    suggested = [f"case.{name}" for name in sorted(CASE_FIELDS)]
    if screen.timed:
        return suggested
    event_fields = {"type"}.union(
        *(declared.fields for name in EVENTS.names(subject=CASE) if (declared := EVENTS.get(name)))
    )
    return (
        suggested
        + [f"customer.{name}" for name in sorted(CUSTOMER_FIELDS)]
        + [f"event.{name}" for name in sorted(event_fields)]
        + [f"actor.{name}" for name in sorted(ACTOR_FIELDS)]
    )


async def _choices(uow: UnitOfWork) -> dict[str, list[tuple[str, str]]]:
    """What the action parameters that name something can name, as (value, label)."""
    people: list[tuple[str, str]] = []
    cursor = None
    while True:
        page = await uow.users.list_page(limit=200, cursor=cursor)
        people += [
            (str(user.id), user.name)
            for user in page.items
            if user.active and user.role != "viewer"
        ]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return {
        "user_id": people,
        "queue": [(queue.code, queue.name) for queue in await uow.queues.all()],
        "action": [(action, action) for action in sorted(await uow.machines.published_actions())],
        "webhook_id": [(str(hook.id), hook.name) for hook in await uow.webhooks.all()],
    }


async def _form_page(
    request: Request,
    viewer: Viewer,
    screen: Screen,
    fields: dict[str, Any],
    *,
    rule_id: uuid.UUID | None = None,
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    async with tenant_work(request, viewer) as uow:
        choices = await _choices(uow)
    events = [
        (name, declared.summary)
        for name in EVENTS.names(subject=CASE)
        if (declared := EVENTS.get(name)) is not None
    ]
    return render(
        request,
        viewer,
        "admin_rule.html",
        status=status,
        section="admin",
        screen=screen,
        rule_id=rule_id,
        fields=fields,
        events=events,
        ops=OPS,
        moments=MOMENTS,
        action_kinds=ACTION_KINDS,
        parameter_values=PARAMETER_VALUES,
        choices=choices,
        suggested_fields=_suggested_fields(screen),
        priorities=admin_sla.PRIORITIES,
        weekdays=admin_sla.WEEKDAYS,
        zones=admin_sla.ZONES,
        errors=[f"{where}: {message}" if where else message for where, message in problems or []],
        row_errors=by_row(problems or []),
        invalid=admin_sla.invalid_inputs([where for where, _ in problems or []]),
    )


@router.get("/app/admin/rules", response_class=HTMLResponse)
async def rules(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    async with tenant_work(request, viewer) as uow:
        event_rules = await uow.rules.in_order()
        time_rules = await uow.time_rules.in_order()
    return render(
        request,
        viewer,
        "admin_rules.html",
        section="admin",
        event_rules=event_rules,
        time_rules=time_rules,
        notice=request.query_params.get("done"),
        errors=[],
    )


def _routes(screen: Screen) -> None:
    """The new, edit, save and delete pages of one kind of rule, at ``screen.path``."""

    async def new(request: Request, viewer: PersonDep) -> Response:
        _admin(viewer)
        return await _form_page(request, viewer, screen, blank_fields(screen))

    async def edit(request: Request, rule_id: str, viewer: PersonDep) -> Response:
        _admin(viewer)
        try:
            async with tenant_work(request, viewer) as uow:
                rule = await screen.kind.repository(uow).get(_rule_id(screen, rule_id))
                fields = stored_fields(screen, rule)
        except NotFound as gone:
            return _gone(request, viewer, gone)
        return await _form_page(request, viewer, screen, fields, rule_id=rule.id)

    async def save(request: Request, viewer: Viewer, rule_id: uuid.UUID | None) -> Response:
        await check_csrf(request, viewer)
        assert viewer.principal is not None
        form = await request.form()
        fields = posted_fields(screen, form)
        button = str(form.get("builder", ""))
        if button:
            if rule_id is not None:
                try:
                    async with tenant_work(request, viewer) as uow:
                        await screen.kind.repository(uow).get(rule_id)
                except NotFound as gone:
                    return _gone(request, viewer, gone)
            changed = rebuilt(fields, button, str(form.get("new_action", "")))
            return await _form_page(request, viewer, screen, changed, rule_id=rule_id)
        fields["conditions"] = [row for row in fields["conditions"] if row["field"]]
        document, problems = document_of(screen, fields)
        try:
            spec: BaseModel = screen.spec.model_validate(document)
        except ValidationError as invalid:
            problems += located(invalid)
        if problems:
            return await _form_page(
                request, viewer, screen, fields, rule_id=rule_id, problems=problems, status=422
            )
        try:
            async with tenant_work(request, viewer) as uow:
                if rule_id is None:
                    await screen.kind.create(uow, viewer.principal, spec)
                else:
                    await screen.kind.replace(uow, viewer.principal, rule_id, spec)
        except NotFound as gone:
            return _gone(request, viewer, gone)
        except CasedeskError as refused:
            return await _form_page(
                request,
                viewer,
                screen,
                fields,
                rule_id=rule_id,
                problems=refused_at(refused),
                status=422,
            )
        return RedirectResponse("/app/admin/rules?done=saved", status_code=303)

    async def create(request: Request, viewer: PersonDep) -> Response:
        _admin(viewer)
        return await save(request, viewer, None)

    async def replace(request: Request, rule_id: str, viewer: PersonDep) -> Response:
        _admin(viewer)
        try:
            chosen = _rule_id(screen, rule_id)
        except NotFound as gone:
            return _gone(request, viewer, gone)
        return await save(request, viewer, chosen)

    async def delete(request: Request, rule_id: str, viewer: PersonDep) -> Response:
        _admin(viewer)
        await check_csrf(request, viewer)
        assert viewer.principal is not None
        try:
            async with tenant_work(request, viewer) as uow:
                await screen.kind.delete(uow, viewer.principal, _rule_id(screen, rule_id))
        except NotFound as gone:
            return _gone(request, viewer, gone)
        return RedirectResponse("/app/admin/rules?done=deleted", status_code=303)

    html = HTMLResponse
    router.add_api_route(f"{screen.path}/new", new, methods=["GET"], response_class=html)
    router.add_api_route(f"{screen.path}/new", create, methods=["POST"])
    router.add_api_route(f"{screen.path}/{{rule_id}}", edit, methods=["GET"], response_class=html)
    router.add_api_route(f"{screen.path}/{{rule_id}}", replace, methods=["POST"])
    router.add_api_route(f"{screen.path}/{{rule_id}}/delete", delete, methods=["POST"])


_routes(EVENT_SCREEN)
_routes(TIME_SCREEN)

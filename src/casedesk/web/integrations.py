"""The admins' screens of the integration engine: connectors, connections (with the OAuth2
Connect button and the subscriptions that use each), workflows and their executions.

They read what the API's readers read and change things through the same activities
(``activities/connections.py``, ``activities/workflows.py``, ``platform/runner.py``); a form
is read into the shapes the API takes (a workflow's definition is the domain's
``WorkflowSpec``). Secrets are written, never shown back: a page says only whether a field
is set, with the API's mask. Connect starts the authorization as ``POST
/api/v1/connections/{id}/authorize`` does, marks this browser for the callback's path and
sends it to the provider; the callback then ends on the connection's page.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.datastructures import FormData

from casedesk.activities import connections, workflows
from casedesk.domain.configuration import Code, Name
from casedesk.domain.workflows import WorkflowSpec
from casedesk.integrations.catalogue import builtin, builtin_manifests
from casedesk.integrations.manifests import ConnectorManifest, parse_manifest
from casedesk.integrations.oauth import AUTHORIZATION_LIFETIME
from casedesk.kit.errors import CasedeskError, InvalidInput, NotFound
from casedesk.kit.values import JsonObject
from casedesk.platform import runner, subscriptions
from casedesk.store.models import Connection, Execution, ExecutionStep, Subscription
from casedesk.store.platform import ExecutionFilter
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.traces.hot import HotStoreUnavailable
from casedesk.traces.query import TraceQuery
from casedesk.web.admin import _admin
from casedesk.web.pages import Viewer, problems, render
from casedesk.web.session import (
    check_csrf,
    container_of,
    person,
    plain_text_only,
    secure,
    tenant_work,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
PersonDep = Annotated[Viewer, Depends(person)]
EXECUTION_STATUSES = ("queued", "running", "succeeded", "failed", "filtered", "dropped")
PAGE_SIZE = 50
NEW_WORKFLOW: dict[str, Any] = {
    "name": "Cases from a webhook",
    "trigger": {"connector": "webhook", "trigger": "delivery"},
    "steps": [
        {
            "name": "open",
            "kind": "create_case",
            "template": "question",
            "title": "{{ trigger.body.subject }}",
        }
    ],
}
SecretValue = Annotated[str, StringConstraints(max_length=8192)]


class ConnectionForm(BaseModel):
    """What the connection forms send: the fields ``POST /api/v1/connections`` takes."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    connector: Code
    settings: JsonObject = Field(default_factory=dict)
    secrets: dict[Code, SecretValue | None] = Field(default_factory=dict, max_length=20)


class WorkflowForm(WorkflowSpec):
    """A workflow's draft as ``POST /api/v1/workflows`` takes it."""

    code: Code


def _page(
    request: Request, viewer: Viewer, template: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    context.setdefault("pretty", _pretty)
    context.setdefault("errors", [])
    return render(
        request, viewer, template, status=status, section="admin", compact=_compact, **context
    )


def _gone(request: Request, viewer: Viewer, gone: CasedeskError) -> HTMLResponse:
    return render(request, viewer, "message.html", status=404, message=gone.detail)


def _id(value: str, what: str) -> uuid.UUID:
    """A path's id; one that is not an id names nothing here (a 404, as another tenant's)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"{what} {value[:40]} not found") from None


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _compact(value: Any) -> str:
    """A setting as its input shows it: a text as it is, anything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# --- connectors ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectorRow:
    """A connector as the list and the detail show it (``GET /api/v1/connectors``)."""

    code: str
    name: str
    description: str
    builtin: bool
    auth: str
    latest_version: int
    versions: list[tuple[int, Any]]
    manifest: ConnectorManifest | None


async def _connectors(uow: UnitOfWork) -> list[ConnectorRow]:
    found = [_shipped(manifest) for manifest in builtin_manifests().values()]
    for connector in await uow.connectors.all():
        found.append(await _own(uow, connector.code))
    return found


def _shipped(manifest: ConnectorManifest) -> ConnectorRow:
    return ConnectorRow(
        manifest.id,
        manifest.name,
        manifest.description,
        True,
        manifest.auth.type,
        manifest.version,
        [(manifest.version, None)],
        manifest,
    )


async def _own(uow: UnitOfWork, code: str) -> ConnectorRow:
    connector = await uow.connectors.by_code(code)
    if connector is None:
        raise NotFound(f"no connector {code!r}")
    versions = await uow.connectors.versions(connector.id)
    latest = next((v for v in versions if v.version == connector.latest_version), None)
    manifest = None if latest is None else parse_manifest(latest.manifest)
    return ConnectorRow(
        connector.code,
        manifest.name if manifest else connector.name,
        manifest.description if manifest else "",
        False,
        manifest.auth.type if manifest else "none",
        connector.latest_version,
        [(v.version, v.published_at) for v in versions],
        manifest,
    )


@router.get("/app/admin/connectors", response_class=HTMLResponse)
async def connector_list(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    async with tenant_work(request, viewer) as uow:
        found = await _connectors(uow)
    return _page(request, viewer, "integ_connectors.html", connectors=found)


@router.get("/app/admin/connectors/{code}", response_class=HTMLResponse)
async def connector_detail(request: Request, code: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    shipped = builtin(code)
    try:
        async with tenant_work(request, viewer) as uow:
            row = _shipped(shipped) if shipped is not None else await _own(uow, code)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return _page(request, viewer, "integ_connector.html", connector=row)


# --- connections -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """A connection as ``GET /api/v1/connections/{id}`` shows it: secrets as set or not."""

    row: Connection
    auth: str
    manifest: ConnectorManifest | None
    secrets: dict[str, connections.SecretState]
    secrets_readable: bool


async def _view(
    request: Request, uow: UnitOfWork, connection: Connection, known: dict[Any, Any]
) -> ConnectionView:
    key = (connection.connector, connection.connector_version)
    if key not in known:
        try:
            known[key] = await connections.manifest_for(uow, *key)
        except CasedeskError:  # a connector that is no longer there: shown without it
            known[key] = None
    manifest = known[key]
    states, readable = connections.secret_states(manifest, container_of(request).box, connection)
    auth = manifest.auth.type if manifest else "unknown"
    return ConnectionView(connection, auth, manifest, states, readable)


async def _usable_connectors(uow: UnitOfWork) -> list[ConnectorRow]:
    """The connectors a connection can be made with: built-in, or published own ones."""
    return [row for row in await _connectors(uow) if row.manifest is not None]


async def _connections_page(
    request: Request,
    viewer: Viewer,
    *,
    errors: list[str] | None = None,
    form: Any = None,
    status: int = 200,
) -> Response:
    chosen = str((form or {}).get("connector", "") or request.query_params.get("connector", ""))
    async with tenant_work(request, viewer) as uow:
        rows: list[ConnectionView] = []
        cursor: str | None = None
        known: dict[Any, Any] = {}
        while True:
            page = await uow.connections.list_page(limit=200, cursor=cursor)
            rows += [await _view(request, uow, row, known) for row in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        usable = await _usable_connectors(uow)
    picked = next((row for row in usable if row.code == chosen), None)
    return _page(
        request,
        viewer,
        "integ_connections.html",
        status=422 if errors else status,
        connections=rows,
        connectors=usable,
        picked=picked,
        errors=errors or [],
        form=form or {},
    )


@router.get("/app/admin/connections", response_class=HTMLResponse)
async def connection_list(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _connections_page(request, viewer)


def _fields(form: FormData, manifest: ConnectorManifest) -> tuple[dict[str, Any], list[str]]:
    """The settings the form's inputs give, typed as the connector's schema declares them;
    what cannot be read is named."""
    settings: dict[str, Any] = {}
    unread = []
    properties = manifest.connection.settings.get("properties", {})
    for name, schema in properties.items():
        raw = str(form.get(f"settings.{name}", "")).strip()
        kind = schema.get("type") if isinstance(schema, dict) else None
        if kind == "boolean":
            if form.get(f"settings.{name}") is not None:
                settings[name] = raw in ("on", "true", "1")
            continue
        if not raw:
            continue
        if kind == "string":
            settings[name] = raw
            continue
        try:
            settings[name] = json.loads(raw)
        except json.JSONDecodeError:
            unread.append(f"settings.{name}: not a {kind or 'JSON'} value")
    return settings, unread


def _secrets(form: FormData, manifest: ConnectorManifest) -> dict[str, str | None]:
    """The secrets the form sets: a blank field is not sent, so an edit keeps what is
    stored (``replace_connection`` keeps fields left out); a ticked "clear" box clears it."""
    given: dict[str, str | None] = {}
    for secret in manifest.connection.secrets:
        value = str(form.get(f"secrets.{secret.name}", ""))
        if form.get(f"clear.{secret.name}") is not None:
            given[secret.name] = None
        elif value:
            given[secret.name] = value
    return given


@router.post("/app/admin/connections")
async def create_connection(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    shown = {k: v for k, v in form.items() if not k.startswith("secrets.")}
    try:
        code = str(form.get("connector", ""))
        async with tenant_work(request, viewer) as uow:
            manifest = await connections.manifest_for(uow, code, None) if code else None
        settings, unread = _fields(form, manifest) if manifest else ({}, [])
        if unread:
            return await _connections_page(request, viewer, errors=unread, form=shown)
        body = ConnectionForm(
            name=str(form.get("name", "")),
            connector=code,
            settings=settings,
            secrets=_secrets(form, manifest) if manifest else {},
        )
        container = container_of(request)
        async with tenant_work(request, viewer) as uow:
            made = await connections.create_connection(
                uow,
                viewer.principal,
                container.box,
                name=body.name,
                connector=body.connector,
                connector_version=None,
                settings=body.settings,
                secrets=body.secrets,
            )
    except ValidationError as invalid:
        return await _connections_page(request, viewer, errors=problems(invalid), form=shown)
    except CasedeskError as refused:
        return await _connections_page(request, viewer, errors=_refusal(refused), form=shown)
    return RedirectResponse(f"/app/admin/connections/{made.id}?done=created", status_code=303)


def _refusal(refused: CasedeskError) -> list[str]:
    """A refusal as lines naming the fields, as the API's problem document lists them."""
    listed = refused.extra.get("errors") if isinstance(refused, InvalidInput) else None
    if isinstance(listed, list) and listed:
        return [f"{item.get('field', '')}: {item.get('message', '')}" for item in listed]
    field = refused.extra.get("field") if isinstance(refused, InvalidInput) else None
    return [f"{field}: {refused.detail}" if field else refused.detail]


async def _connection_page(
    request: Request,
    viewer: Viewer,
    connection_id: uuid.UUID,
    *,
    errors: list[str] | None = None,
    checked: connections.ConnectionCheck | None = None,
    status: int = 200,
) -> Response:
    async with tenant_work(request, viewer) as uow:
        try:
            connection = await uow.connections.get(connection_id)
        except NotFound as gone:
            return _gone(request, viewer, gone)
        view = await _view(request, uow, connection, {})
        used_by = await _subscriptions_of(uow, connection.id)
    done = request.query_params.get("done", "")
    return _page(
        request,
        viewer,
        "integ_connection.html",
        status=status,
        connection=view,
        subscriptions=used_by,
        done=done if done in ("created", "saved", "connected", "refused") else "",
        checked=checked,
        errors=errors or [],
    )


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """A subscription for monitoring (``GET /api/v1/subscriptions``), with its last event:
    the newest execution it started."""

    row: Subscription
    workflow: str
    kind: str | None
    last: Execution | None


async def _subscriptions_of(uow: UnitOfWork, connection_id: uuid.UUID) -> list[SubscriptionView]:
    found, cursor = [], None
    while True:
        page = await uow.subscriptions.list_page(limit=200, cursor=cursor)
        for subscription in page.items:
            if subscription.connection_id != connection_id:
                continue
            facts = await workflows.facts_of(uow, subscription)
            newest = await uow.executions.list_page(
                ExecutionFilter(subscription_id=subscription.id), limit=1, cursor=None
            )
            last = newest.items[0] if newest.items else None
            found.append(SubscriptionView(subscription, facts.workflow, facts.kind, last))
        cursor = page.next_cursor
        if cursor is None:
            return found


@router.get("/app/admin/connections/{connection_id}", response_class=HTMLResponse)
async def connection_detail(request: Request, connection_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    try:
        wanted = _id(connection_id, "connection")
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return await _connection_page(request, viewer, wanted)


@router.post("/app/admin/connections/{connection_id}")
async def save_connection(request: Request, connection_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    container = container_of(request)
    try:
        wanted = _id(connection_id, "connection")
        async with tenant_work(request, viewer) as uow:
            connection = await uow.connections.get(wanted)
            manifest = await connections.manifest_for(
                uow, connection.connector, connection.connector_version
            )
        settings, unread = _fields(form, manifest)
        if unread:
            return await _connection_page(request, viewer, wanted, errors=unread, status=422)
        body = ConnectionForm(
            name=str(form.get("name", "")),
            connector=connection.connector,
            settings=settings,
            secrets=_secrets(form, manifest),
        )
        async with tenant_work(request, viewer) as uow:
            await connections.replace_connection(
                uow,
                viewer.principal,
                container.box,
                wanted,
                name=body.name,
                connector=None,
                connector_version=None,
                settings=body.settings,
                secrets=body.secrets,
            )
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except ValidationError as invalid:
        return await _connection_page(request, viewer, wanted, errors=problems(invalid), status=422)
    except CasedeskError as refused:
        return await _connection_page(
            request, viewer, wanted, errors=_refusal(refused), status=refused.status
        )
    return RedirectResponse(f"/app/admin/connections/{wanted}?done=saved", status_code=303)


@router.post("/app/admin/connections/{connection_id}/delete")
async def delete_connection(request: Request, connection_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        wanted = _id(connection_id, "connection")
        async with tenant_work(request, viewer) as uow:
            await connections.delete_connection(uow, viewer.principal, wanted)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except CasedeskError as refused:  # used by workflows: they are named
        return await _connection_page(
            request, viewer, wanted, errors=[refused.detail], status=refused.status
        )
    return RedirectResponse("/app/admin/connections", status_code=303)


@router.post("/app/admin/connections/{connection_id}/test")
async def test_connection(request: Request, connection_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    container = container_of(request)
    try:
        wanted = _id(connection_id, "connection")
        async with tenant_work(request, viewer) as uow:
            checked = await connections.check_connection(
                uow, viewer.principal, container.hub, container.box, wanted
            )
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except CasedeskError as refused:
        return await _connection_page(
            request, viewer, wanted, errors=[refused.detail], status=refused.status
        )
    return await _connection_page(request, viewer, wanted, checked=checked)


@router.post("/app/admin/connections/{connection_id}/connect")
async def connect(request: Request, connection_id: str, viewer: PersonDep) -> Response:
    """Start the OAuth2 authorization and send the browser to the provider; its callback
    (``connections.OAUTH_CALLBACK_PATH``) brings it back to this connection's page."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    container = container_of(request)
    base = container.settings.public_url or str(request.base_url).rstrip("/")
    try:
        wanted = _id(connection_id, "connection")
        async with tenant_work(request, viewer) as uow:
            started = await connections.start_authorization(
                uow,
                viewer.principal,
                container.box,
                wanted,
                redirect_uri=base + connections.OAUTH_CALLBACK_PATH,
            )
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except CasedeskError as refused:
        return await _connection_page(
            request, viewer, wanted, errors=[refused.detail], status=refused.status
        )
    away = RedirectResponse(started.authorize_url, status_code=303)
    away.set_cookie(
        connections.PAGE_FLOW_COOKIE,
        connections.page_flow_mark(wanted, started.state),
        max_age=int(AUTHORIZATION_LIFETIME.total_seconds()),
        path=connections.OAUTH_CALLBACK_PATH,
        httponly=True,
        samesite="lax",
        secure=secure(request),
    )
    return away


# --- workflows -------------------------------------------------------------------------------


def _lifecycle(request: Request) -> workflows.Lifecycle:
    return workflows.Lifecycle(subscriptions.start, subscriptions.stop, container_of(request).box)


async def _workflows_page(
    request: Request,
    viewer: Viewer,
    *,
    errors: list[str] | None = None,
    text: str | None = None,
    code: str = "",
) -> Response:
    async with tenant_work(request, viewer) as uow:
        found = [
            (workflow, await uow.subscriptions.of_workflow(workflow.id))
            for workflow in await uow.workflows.all()
        ]
    return _page(
        request,
        viewer,
        "integ_workflows.html",
        status=422 if errors else 200,
        workflows=found,
        text=text if text is not None else _pretty(NEW_WORKFLOW),
        code=code,
        errors=errors or [],
    )


@router.get("/app/admin/workflows", response_class=HTMLResponse)
async def workflow_list(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _workflows_page(request, viewer)


async def _workflow_page(
    request: Request,
    viewer: Viewer,
    code: str,
    *,
    errors: list[str] | None = None,
    text: str | None = None,
    status: int = 200,
) -> Response:
    async with tenant_work(request, viewer) as uow:
        try:
            workflow = await workflows.workflow_by_code(uow, code)
        except NotFound as gone:
            return _gone(request, viewer, gone)
        spec = workflows.parsed(workflow.draft)
        refusals = [] if spec is None else await workflows.check(uow, spec)
        versions = await uow.workflows.versions(workflow.id)
        subscription = await uow.subscriptions.of_workflow(workflow.id)
    done = request.query_params.get("done", "")
    return _page(
        request,
        viewer,
        "integ_workflow.html",
        status=status,
        workflow=workflow,
        spec=spec,
        problems=refusals,
        versions=versions,
        subscription=subscription,
        text=text if text is not None else _pretty(workflow.draft),
        done=done if done in ("saved", "published", "unchanged", "enabled", "disabled") else "",
        errors=errors or [],
    )


@router.get("/app/admin/workflows/{code}", response_class=HTMLResponse)
async def workflow_detail(request: Request, code: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _workflow_page(request, viewer, code)


def _workflow_form(code: str, text: str) -> WorkflowForm:
    document = json.loads(text)
    if not isinstance(document, dict):
        raise InvalidInput("the definition is a JSON object", field="definition")
    return WorkflowForm.model_validate(document | {"code": code})


@router.post("/app/admin/workflows")
async def save_workflow(request: Request, viewer: PersonDep) -> Response:
    """Save a draft (a new workflow, or the one named); what publishing would refuse is
    listed on its page."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    code, text = str(form.get("code", "")).strip(), str(form.get("definition", ""))
    try:
        body = _workflow_form(code, text)
        async with tenant_work(request, viewer) as uow:
            await workflows.save_draft(uow, viewer.principal, code=body.code, spec=body)
    except (json.JSONDecodeError, ValidationError, CasedeskError) as refused:
        if isinstance(refused, json.JSONDecodeError):
            errors = [f"definition: not JSON: {refused}"]
        elif isinstance(refused, ValidationError):
            errors = problems(refused)
        else:
            errors = _refusal(refused)
        async with tenant_work(request, viewer) as uow:
            exists = await uow.workflows.by_code(code) is not None
        if exists:
            return await _workflow_page(request, viewer, code, errors=errors, text=text, status=422)
        return await _workflows_page(request, viewer, errors=errors, text=text, code=code)
    return RedirectResponse(f"/app/admin/workflows/{body.code}?done=saved", status_code=303)


@router.post("/app/admin/workflows/{code}/publish")
async def publish_workflow(request: Request, code: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            published = await workflows.publish(
                uow, viewer.principal, code, enabled=None, lifecycle=_lifecycle(request)
            )
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except CasedeskError as refused:
        return await _workflow_page(
            request, viewer, code, errors=_refusal(refused), status=refused.status
        )
    done = "unchanged" if published.unchanged else "published"
    return RedirectResponse(f"/app/admin/workflows/{code}?done={done}", status_code=303)


@router.post("/app/admin/workflows/{code}/{switch}")
async def switch_workflow(request: Request, code: str, switch: str, viewer: PersonDep) -> Response:
    """Turn the workflow on (``enable``) or off (``disable``): its subscription follows."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    if switch not in ("enable", "disable"):
        return _gone(request, viewer, NotFound(f"no such change: {switch[:40]}"))
    try:
        async with tenant_work(request, viewer) as uow:
            await workflows.set_enabled(
                uow,
                viewer.principal,
                code,
                enabled=switch == "enable",
                lifecycle=_lifecycle(request),
            )
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except CasedeskError as refused:
        return await _workflow_page(
            request, viewer, code, errors=_refusal(refused), status=refused.status
        )
    return RedirectResponse(f"/app/admin/workflows/{code}?done={switch}d", status_code=303)


# --- executions ------------------------------------------------------------------------------


class ExecutionFilters(BaseModel):
    """The list's filters, as ``GET /api/v1/executions`` takes them."""

    model_config = ConfigDict(extra="ignore")

    workflow: Code | None = None
    status: str | None = Field(default=None, pattern="^(" + "|".join(EXECUTION_STATUSES) + ")$")
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


@router.get("/app/admin/executions", response_class=HTMLResponse)
async def execution_list(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    query = {k: v for k, v in request.query_params.items() if v}
    try:
        filters = ExecutionFilters.model_validate(query)
    except ValidationError as invalid:
        return _page(
            request,
            viewer,
            "integ_executions.html",
            status=422,
            executions=[],
            codes={},
            filters=query,
            statuses=EXECUTION_STATUSES,
            next_cursor=None,
            errors=problems(invalid),
        )
    async with tenant_work(request, viewer) as uow:
        codes = {workflow.id: workflow.code for workflow in await uow.workflows.all()}
        workflow_id = next((i for i, c in codes.items() if c == filters.workflow), None)
        items: list[Execution] = []
        next_cursor = None
        if filters.workflow is None or workflow_id is not None:
            where = ExecutionFilter(workflow_id=workflow_id, status=filters.status)
            try:
                page = await uow.executions.list_page(where, limit=PAGE_SIZE, cursor=filters.cursor)
            except InvalidInput as bad:
                return _page(
                    request,
                    viewer,
                    "integ_executions.html",
                    status=422,
                    executions=[],
                    codes=codes,
                    filters=query,
                    statuses=EXECUTION_STATUSES,
                    next_cursor=None,
                    errors=_refusal(bad),
                )
            items, next_cursor = list(page.items), page.next_cursor
    return _page(
        request,
        viewer,
        "integ_executions.html",
        executions=items,
        codes=codes,
        filters=query,
        statuses=EXECUTION_STATUSES,
        next_cursor=next_cursor,
        errors=[],
    )


async def _failing_calls(
    request: Request, viewer: Viewer, execution: Execution, steps: list[ExecutionStep]
) -> dict[uuid.UUID, str]:
    """For each failed step that made calls, the trace record of its last failing call
    (the trace store may be out of reach: the page links the execution's traces then)."""
    failed = [step for step in steps if step.status == "failed" and step.trace_ids]
    if not failed:
        return {}
    assert viewer.principal is not None
    query = TraceQuery(
        tenant_id=viewer.principal.tenant_id, execution_id=str(execution.id), limit=200
    )
    try:
        records = await container_of(request).trace_reader.query(query)
    except HotStoreUnavailable:
        return {}
    found = {}
    for step in failed:
        calls = [
            doc
            for doc in records
            if doc.get("trace_id") in step.trace_ids
            and (doc.get("error") or (doc.get("status") or 0) >= 400 or doc.get("status") is None)
        ]
        if calls:  # newest first
            found[step.id] = str(calls[0]["id"])
    return found


async def _execution_page(
    request: Request,
    viewer: Viewer,
    execution_id: uuid.UUID,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    async with tenant_work(request, viewer) as uow:
        execution = await uow.executions.find(execution_id)
        if execution is None:
            return _gone(request, viewer, NotFound(f"execution {execution_id} not found"))
        workflow = await uow.workflows.find(execution.workflow_id)
        steps = await uow.executions.steps(execution.id)
    done = request.query_params.get("done", "")
    return _page(
        request,
        viewer,
        "integ_execution.html",
        status=status,
        execution=execution,
        workflow=workflow.code if workflow else "",
        steps=steps,
        failing=await _failing_calls(request, viewer, execution, steps),
        done=done if done in ("retried", "replayed") else "",
        errors=errors or [],
    )


@router.get("/app/admin/executions/{execution_id}", response_class=HTMLResponse)
async def execution_detail(request: Request, execution_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    try:
        wanted = _id(execution_id, "execution")
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return await _execution_page(request, viewer, wanted)


@router.post("/app/admin/executions/{execution_id}/{again}")
async def run_again(request: Request, execution_id: str, again: str, viewer: PersonDep) -> Response:
    """Retry a failed execution (``retry``) or run its item again as a new one (``replay``)."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    if again not in ("retry", "replay"):
        return _gone(request, viewer, NotFound(f"no such run: {again[:40]}"))
    try:
        wanted = _id(execution_id, "execution")
        async with tenant_work(request, viewer) as uow:
            if again == "retry":
                ran = await runner.retry(uow, viewer.principal, wanted)
            else:
                ran = await runner.replay(uow, viewer.principal, wanted)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except CasedeskError as refused:
        return await _execution_page(
            request, viewer, wanted, errors=[refused.detail], status=refused.status
        )
    done = {"retry": "retried", "replay": "replayed"}[again]
    return RedirectResponse(f"/app/admin/executions/{ran.id}?done={done}", status_code=303)

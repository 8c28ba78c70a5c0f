"""The agents' workbench: views with live counts, the case list, and the case page with its
timeline, reply box, actions and transfer. Every change runs the same activity as the API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from pydantic import ValidationError

from casedesk.activities import saved_views
from casedesk.activities.add_comment import AddCommentActivity, CommentParams
from casedesk.activities.apply_action import ActionParams, ApplyActionActivity
from casedesk.activities.base import ActivityContext
from casedesk.activities.macros import apply_macro, rendered_reply
from casedesk.activities.transfer_case import TransferCaseActivity, TransferParams
from casedesk.activities.update_case import UpdateCaseActivity, UpdateParams
from casedesk.domain.cases.inputs import ActionInput, CaseChanges, CommentInput, TransferInput
from casedesk.domain.cases.lists import (
    CaseQuery,
    SavedViewIn,
    ViewFilters,
    base_query,
    count_cases,
    find_cases,
)
from casedesk.domain.cases.priority import Priority
from casedesk.domain.cases.reads import highlights
from casedesk.domain.cases.views import detail
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.domain.search.finding import Searcher
from casedesk.domain.search.indexing import lag_of
from casedesk.domain.search.query import MAX_LENGTH, QueryError, parse
from casedesk.kit.errors import (
    CasedeskError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from casedesk.kit.values import INT64_MAX
from casedesk.store.cases import SORTS
from casedesk.store.models import Case
from casedesk.store.search import RELEVANCE
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.web.forms import fields_of, values_of
from casedesk.web.pages import Viewer, render
from casedesk.web.session import (
    check_csrf,
    container_of,
    person,
    plain_text_only,
    tenant_work,
)
from casedesk.web.traces import DESCRIPTION, case_calls

router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
PersonDep = Annotated[Viewer, Depends(person)]
PAGE_SIZE = 50
CaseNumber = Annotated[int, Path(ge=1, le=INT64_MAX, description="the case's number")]
COUNT_CAP = 999
STALE = "stale"
LIVE_POLL_SECONDS = 2.0
LIVE_HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class View:
    code: str
    title: str
    sort: str

    def query(self, me: Principal) -> CaseQuery:
        return base_query(self.code, me.user_id)


VIEWS = (
    View("mine", "My open cases", "-updated"),
    View("unassigned", "Unassigned in my queues", "-created"),
    View("waiting", "Waiting on customer", "-updated"),
    View("sla_due", "SLA due soon", "-priority"),
    View("open", "All open cases", "-updated"),
    View("recent", "Recently updated", "-updated"),
    View("closed", "Closed", "-updated"),
)
VIEWS_BY_CODE = {view.code: view for view in VIEWS}
SORT_LABELS = {
    "-created": "Newest first",
    "created": "Oldest first",
    "-updated": "Updated last first",
    "updated": "Updated first first",
    "-priority": "Most urgent first",
    "priority": "Least urgent first",
    "-number": "Highest number first",
    "number": "Lowest number first",
    "relevance": "Best match first",
}
"""What each sort is called on screen (the templates translate these)."""
FIELDS_MATCHED = {
    "title": "Title",
    "description": "Description",
    "comment": "Comment",
    "internal_note": "Internal note",
}
"""Where a search matched, as the list says it beside the fragment."""
CHILDREN_SHOWN = 20
HISTORY_SHOWN = 100
HISTORY_LABELS = {
    "case.create": "Opened the case",
    "comment.add": "Wrote a comment",
    "comment.redeliver": "Retried a delivery",
    "comment.edited_at_source": "Edited at the source",
    "comment.deleted_at_source": "Deleted at the source",
    "task.accept": "Took the case on",
    "case.transfer": "Transferred the case",
    "case.action": "Applied an action",
    "case.update": "Changed the case",
    "case.rate": "Rated the case",
    "sla.warning": "SLA warning",
    "sla.breached": "SLA breached",
    "webhook.queued": "Sent a webhook",
}
CHANGED_FIELDS = {"title": "Title", "priority": "Priority", "tags": "Tags", "form": "Form"}
SLA_LABELS = {"first_response": "First response", "resolution": "Resolution"}
PRIORITY_LABELS = {"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"}


async def _sidebar(uow: UnitOfWork, me: Principal) -> dict[str, Any]:
    """The sidebar's views, built-in and saved (shared, then the person's own), with counts;
    a saved view's count is under ``saved-<id>``."""
    counts = {view.code: await count_cases(uow, view.query(me), cap=COUNT_CAP) for view in VIEWS}
    saved = await uow.saved_views.visible_to(me.user_id)
    for kept in saved:
        try:
            query = ViewFilters.model_validate(kept.filters).query(me.user_id)
            counts[f"saved-{kept.id}"] = await count_cases(uow, query, cap=COUNT_CAP)
        except (CasedeskError, ValidationError):
            counts[f"saved-{kept.id}"] = 0  # it names a queue or template deleted since
    return {"views": VIEWS, "saved": saved, "counts": counts, "cap": COUNT_CAP}


async def _names(uow: UnitOfWork) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, str]]:
    """Queue codes and people's names by id, for the lists and the case page."""
    queues = {queue.id: queue.code for queue in await uow.queues.all()}
    people: dict[uuid.UUID, str] = {}
    cursor = None
    while True:
        page = await uow.users.list_page(limit=200, cursor=cursor)
        people.update({user.id: user.name for user in page.items})
        if page.next_cursor is None:
            return queues, people
        cursor = page.next_cursor


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _chosen(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


@router.get("/app/counts")
async def view_counts(request: Request, viewer: PersonDep) -> Response:
    """The sidebar's counts, which the page refreshes while it is open."""
    assert viewer.principal is not None
    async with tenant_work(request, viewer) as uow:
        sidebar = await _sidebar(uow, viewer.principal)
    counts: dict[str, int] = sidebar["counts"]
    shown = {code: str(n) if n <= COUNT_CAP else f"{COUNT_CAP}+" for code, n in counts.items()}
    return JSONResponse(shown, headers={"Cache-Control": "no-store"})


def _saved_params(kept: ViewFilters, sort: str, cursor: str | None) -> dict[str, str]:
    """A saved view as the list's query parameters."""
    chosen = {
        "state": kept.state,
        "queue": kept.queue,
        "priority": kept.priority.value if kept.priority is not None else None,
        "template": kept.template,
        "q": kept.q,
        "sort": sort,
        "cursor": cursor,
    }
    return {name: value for name, value in chosen.items() if value}


def _default_sort(form: Any) -> str:
    """The sort a view saved without one keeps: the best match first when it searches
    words, else the most recently updated first."""
    searched = str(form.get("q", "")).strip()
    try:
        words = [t for t in parse(searched).texts if not t.negated]
    except QueryError:
        words = []  # the view's own validation names the problem
    return RELEVANCE if words else "-updated"


@router.post("/app/views")
async def save_view(request: Request, viewer: PersonDep) -> Response:
    """The list as it is filtered now, kept under a name: the person's own, or (admins)
    everyone's."""
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    try:
        spec = SavedViewIn(
            name=str(form.get("name", "")),
            filters=ViewFilters(
                base=str(form.get("view", "open")),
                state=_chosen(str(form.get("state", ""))),
                queue=_chosen(str(form.get("queue", ""))),
                priority=_chosen(str(form.get("priority", ""))),
                template=_chosen(str(form.get("template", ""))),
                q=_chosen(str(form.get("q", ""))),
            ),
            sort=str(form.get("sort") or _default_sort(form)),
            shared=form.get("shared") == "1",
        )
        async with tenant_work(request, viewer) as uow:
            view = await saved_views.create_view(uow, viewer.principal, spec)
    except ValidationError as invalid:
        problem = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in invalid.errors()
        )
        return render(request, viewer, "message.html", status=422, message=problem)
    except CasedeskError as refused:
        return render(
            request, viewer, "message.html", status=refused.status, message=refused.detail
        )
    return RedirectResponse(f"/app/cases?saved={view.id}", status_code=303)


@router.post("/app/views/{view_id}/delete")
async def delete_view(request: Request, view_id: uuid.UUID, viewer: PersonDep) -> Response:
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            await saved_views.delete_view(uow, viewer.principal, view_id)
    except CasedeskError as refused:
        return render(
            request, viewer, "message.html", status=refused.status, message=refused.detail
        )
    return RedirectResponse("/app/cases?view=open", status_code=303)


@router.get("/app", response_class=HTMLResponse)
async def start(viewer: PersonDep) -> Response:
    return RedirectResponse("/app/cases?view=mine", status_code=303)


@router.get("/app/cases", response_class=HTMLResponse)
async def case_list(request: Request, viewer: PersonDep) -> Response:
    assert viewer.principal is not None
    params: Mapping[str, str] = request.query_params
    view = VIEWS_BY_CODE.get(params.get("view", "open"), VIEWS_BY_CODE["open"])
    saved = None
    if _is_uuid(params.get("saved", "")):
        async with tenant_work(request, viewer) as uow:
            try:
                saved = await uow.saved_views.visible(
                    uuid.UUID(params["saved"]), viewer.principal.user_id
                )
            except NotFound:
                return render(request, viewer, "message.html", status=404, message="no such view")
        kept = ViewFilters.model_validate(saved.filters)
        view = VIEWS_BY_CODE[kept.base]
        params = _saved_params(kept, saved.sort, params.get("cursor"))
    searched = (params.get("q") or "").strip()[: MAX_LENGTH + 1] or None
    sort: str | None = params.get("sort") or None
    if sort not in (*SORTS, RELEVANCE):
        sort = None  # the view's order, or the best match first when words are searched
    priority = Priority.__members__.get((params.get("priority") or "").upper())
    query = replace(
        view.query(viewer.principal),
        state=_chosen(params.get("state")),
        queue=_chosen(params.get("queue")),
        priority=priority.rank if priority is not None else None,
        template=_chosen(params.get("template")),
        q=searched,
        searcher=Searcher(viewer.principal.user_id, internal=True),
    )
    found: dict[uuid.UUID, dict[str, str] | None] = {}
    lag = None
    async with tenant_work(request, viewer) as uow:
        sidebar = await _sidebar(uow, viewer.principal)
        queues, people = await _names(uow)
        problem = None
        try:
            page = await find_cases(
                uow,
                query,
                sort=sort,
                limit=PAGE_SIZE,
                cursor=_chosen(params.get("cursor")),
                default=view.sort,
            )
            if searched:
                found = await highlights(uow, [(c.id, c.title) for c in page.items], query)
                lag = await lag_of(uow, viewer.principal.tenant_id)
        except CasedeskError as refused:
            page, problem = None, refused.detail
    filters = {
        "view": view.code,
        "state": query.state or "",
        "queue": query.queue or "",
        "priority": priority.value if priority is not None else "",
        "template": query.template or "",
        "sort": sort or "",
        "q": searched or "",
    }
    return render(
        request,
        viewer,
        "cases.html",
        status=200 if problem is None else 422,
        **sidebar,
        view=view,
        saved_view=saved,
        cases=page.items if page else [],
        next_cursor=page.next_cursor if page else None,
        queues=queues,
        people=people,
        filters=filters,
        sorts={sort: SORT_LABELS[sort] for sort in (*SORTS, RELEVANCE)},
        priorities=PRIORITY_LABELS,
        problem=problem,
        highlights=found,
        fields_matched=FIELDS_MATCHED,
        behind=lag is not None and lag.behind,
    )


async def _case(uow: UnitOfWork, number: int) -> Case:
    case = await uow.cases.by_number(number)
    if case is None:
        raise NotFound(f"no case #{number}")
    return case


@dataclass(frozen=True, slots=True)
class MacroDraft:
    """A macro chosen in the reply box: its text rendered for this case, to review and send."""

    id: uuid.UUID
    name: str
    reply: str
    public: bool
    actions: list[dict[str, Any]]


async def _macro_draft(
    uow: UnitOfWork, viewer: Viewer, case: Case, chosen: str | None
) -> MacroDraft | None:
    assert viewer.principal is not None
    if not chosen or not _is_uuid(chosen):
        return None
    macro = await uow.macros.visible(uuid.UUID(chosen), viewer.principal.user_id)
    if macro is None:
        return None
    reply = await rendered_reply(uow, macro, case, viewer.principal.user_id)
    return MacroDraft(macro.id, macro.name, reply, macro.public, macro.actions)


async def _case_page(
    request: Request,
    viewer: Viewer,
    number: int,
    *,
    error: str | None = None,
    status: int = 200,
    macro: str | None = None,
) -> Response:
    assert viewer.principal is not None
    container = container_of(request)
    async with tenant_work(request, viewer) as uow:
        try:
            case = await _case(uow, number)
        except NotFound:
            return render(request, viewer, "message.html", status=404, message="no such case")
        # read before the case, so a change in between makes the page refresh, never hides
        marker = await uow.cases.marker(case.id)
        shown = await detail(uow, case, container.extensions, viewer.principal.edition)
        sidebar = await _sidebar(uow, viewer.principal)
        queues, people = await _names(uow)
        template = await uow.templates.get(case.template_id)
        parent = await uow.cases.find(case.parent_id) if case.parent_id else None
        children = await uow.cases.children(case.id, limit=CHILDREN_SHOWN)
        history = await uow.actions.history(case.id, limit=HISTORY_SHOWN, cursor=None)
        admin = viewer.principal.role.at_least(Role.ADMIN)
        calls = await case_calls(uow, case.id, shown.comments) if admin else {}
        macros = await uow.macros.visible_to(viewer.principal.user_id)
        draft = await _macro_draft(uow, viewer, case, macro)
    fields = fields_of(template.form_schema)
    return render(
        request,
        viewer,
        "case.html",
        macros=macros,
        macro_draft=draft,
        status=status,
        case=shown,
        **sidebar,
        view=None,
        queues=queues,
        people=people,
        error=error,
        sla_labels=SLA_LABELS,
        priorities=PRIORITY_LABELS,
        marker=marker,
        fields=fields,
        posted={f.input_name: _shown_value(shown.form.get(f.name)) for f in fields},
        other_form={k: v for k, v in shown.form.items() if k not in {f.name for f in fields}},
        parent=parent,
        children=children,
        history=history.items,
        history_more=history.next_cursor is not None,
        history_labels=HISTORY_LABELS,
        changed_fields=CHANGED_FIELDS,
        calls=calls,
        description_calls=calls.get(DESCRIPTION),
    )


def _shown_value(value: Any) -> str:
    if value is None or value is False:
        return ""
    return "1" if value is True else str(value)


@router.get("/app/cases/{number}", response_class=HTMLResponse)
async def case_page(request: Request, number: CaseNumber, viewer: PersonDep) -> Response:
    return await _case_page(request, viewer, number, macro=request.query_params.get("macro"))


async def _change(
    request: Request,
    viewer: Viewer,
    number: int,
    run: Any,
) -> Response:
    """Run one case activity from a form: back to the case, or the case with what went wrong.
    A form that carries the version the person saw is refused when the case moved on."""
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    version = str(form.get("version", "")).strip()
    try:
        async with tenant_work(request, viewer) as uow:
            case_id = (await _case(uow, number)).id
        async with tenant_work(request, viewer) as uow:
            context = ActivityContext.of(
                uow,
                viewer.principal,
                container_of(request).extensions,
                expected_version=int(version) if version.isascii() and version.isdigit() else None,
            )
            await run(context, case_id, form)
    except NotFound:
        return render(request, viewer, "message.html", status=404, message="no such case")
    except (PreconditionFailed, Conflict) as stale:
        error = STALE if isinstance(stale, PreconditionFailed) else stale.detail
        return await _case_page(request, viewer, number, error=error, status=409)
    except CasedeskError as refused:
        return await _case_page(
            request, viewer, number, error=refused.detail, status=refused.status
        )
    except ValidationError as invalid:
        problem = "; ".join(str(error["msg"]) for error in invalid.errors())
        return await _case_page(request, viewer, number, error=problem, status=422)
    return RedirectResponse(f"/app/cases/{number}", status_code=303)


@router.post("/app/cases/{number}/comments")
async def reply(request: Request, number: CaseNumber, viewer: PersonDep) -> Response:
    async def run(context: ActivityContext, case_id: uuid.UUID, form: Any) -> None:
        text = str(form.get("body", "")).strip()
        if not text:
            raise InvalidInput("write the reply first", field="body")
        body = CommentInput(body=text, public=form.get("visibility", "public") == "public")
        await AddCommentActivity(context).run(CommentParams(case_id, body))

    return await _change(request, viewer, number, run)


@router.post("/app/cases/{number}/macros/{macro_id}")
async def send_macro(
    request: Request, number: CaseNumber, macro_id: uuid.UUID, viewer: PersonDep
) -> Response:
    """Send the reviewed reply of a macro and apply its actions, as the API's apply does."""

    async def run(context: ActivityContext, case_id: uuid.UUID, form: Any) -> None:
        await apply_macro(context, case_id, macro_id, str(form.get("body", "")).strip())

    return await _change(request, viewer, number, run)


@router.post("/app/cases/{number}/actions/{action}")
async def act(request: Request, number: CaseNumber, action: str, viewer: PersonDep) -> Response:
    async def run(context: ActivityContext, case_id: uuid.UUID, form: Any) -> None:
        note = str(form.get("comment", "")).strip() or None
        body = ActionInput(comment=note, public=False)
        await ApplyActionActivity(context).run(ActionParams(case_id, action, body))

    return await _change(request, viewer, number, run)


@router.post("/app/cases/{number}/details")
async def change_details(request: Request, number: CaseNumber, viewer: PersonDep) -> Response:
    """Title, priority and tags, in one change of the case."""

    async def run(context: ActivityContext, case_id: uuid.UUID, form: Any) -> None:
        tags = [tag.strip() for tag in str(form.get("tags", "")).split(",") if tag.strip()]
        changes = CaseChanges(
            title=str(form.get("title", "")).strip() or None,
            priority=str(form.get("priority", "")).strip() or None,
            tags=list(dict.fromkeys(tags)),
        )
        await UpdateCaseActivity(context).run(UpdateParams(case_id, changes))

    return await _change(request, viewer, number, run)


@router.post("/app/cases/{number}/form")
async def change_form(request: Request, number: CaseNumber, viewer: PersonDep) -> Response:
    """The template's form fields as the page shows them; the schema validates the result."""

    async def run(context: ActivityContext, case_id: uuid.UUID, form: Any) -> None:
        await context.uow.begin_write()
        case = await context.uow.cases.get(case_id)
        template = await context.uow.templates.get(case.template_id)
        values = values_of(fields_of(template.form_schema), form, clear_empty=True)
        await UpdateCaseActivity(context).run(UpdateParams(case_id, CaseChanges(form=values)))

    return await _change(request, viewer, number, run)


@router.post("/app/cases/{number}/transfer")
async def transfer(request: Request, number: CaseNumber, viewer: PersonDep) -> Response:
    async def run(context: ActivityContext, case_id: uuid.UUID, form: Any) -> None:
        assignee = str(form.get("assignee", "")).strip()
        if assignee not in ("", "none") and not _is_uuid(assignee):
            raise InvalidInput("choose the assignee from the list", field="assignee")
        body = TransferInput(
            queue=str(form.get("queue", "")).strip() or None,
            assignee_id=uuid.UUID(assignee) if assignee not in ("", "none") else None,
            unassign=assignee == "none",
        )
        await TransferCaseActivity(context).run(TransferParams(case_id, body))

    return await _change(request, viewer, number, run)


@router.get("/app/cases/{number}/live")
async def live(request: Request, number: CaseNumber, viewer: PersonDep) -> Response:
    """Server-Sent Events for an open case page: ``changed`` once the case or its conversation
    is no longer what the page shows (``seen``: the marker it was rendered with), whoever
    changed it (a colleague, a rule, a channel). The page then reloads, or,
    when someone is typing, says the case changed."""
    async with tenant_work(request, viewer) as uow:
        try:
            case_id = (await _case(uow, number)).id
        except NotFound:
            return Response("no such case", status_code=404)
        now = await uow.cases.marker(case_id)
    shown = request.query_params.get("seen", now or "")[:80]
    return StreamingResponse(
        _changes(request, viewer, case_id, shown),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _changes(
    request: Request, viewer: Viewer, case_id: uuid.UUID, shown: str
) -> AsyncIterator[bytes]:
    yield b"retry: 5000\n: following the case\n\n"
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        async with tenant_work(request, viewer) as uow:
            marker = await uow.cases.marker(case_id)
        if marker != shown:
            yield f"event: changed\ndata: {marker or 'gone'}\n\n".encode()
            return
        if time.monotonic() - quiet_since >= LIVE_HEARTBEAT_SECONDS:
            yield b": still here\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(LIVE_POLL_SECONDS)


BULK_OPERATIONS = ("assign", "transfer", "action", "tag")
BULK_LIMIT = PAGE_SIZE


@dataclass(frozen=True, slots=True)
class Selected:
    """A selected case as read before its change; the change is refused if it moved on."""

    id: uuid.UUID
    version: int
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    number: int
    problem: str | None


def _bulk_step(form: Any) -> Any:
    """The one change a bulk form asks for, as a function of a case; bad input names its field."""
    operation = str(form.get("operation", "")).strip()
    if operation not in BULK_OPERATIONS:
        raise InvalidInput("choose what to do with the selected cases", field="operation")
    if operation == "assign":
        assignee = str(form.get("assignee", "")).strip()
        if not _is_uuid(assignee):
            raise InvalidInput("choose the assignee from the list", field="assignee")
        assign = TransferInput(assignee_id=uuid.UUID(assignee))
        return lambda context, case: TransferCaseActivity(context).run(
            TransferParams(case.id, assign)
        )
    if operation == "transfer":
        queue = str(form.get("queue", "")).strip()
        if not queue:
            raise InvalidInput("choose the queue from the list", field="queue")
        move = TransferInput(queue=queue)
        return lambda context, case: TransferCaseActivity(context).run(
            TransferParams(case.id, move)
        )
    if operation == "action":
        action = str(form.get("action", "")).strip()
        if not action:
            raise InvalidInput("choose the action from the list", field="action")
        body = ActionInput(comment=None, public=False)
        return lambda context, case: ApplyActionActivity(context).run(
            ActionParams(case.id, action, body)
        )
    tag = str(form.get("tag", "")).strip()
    if not tag:
        raise InvalidInput("write the tag first", field="tag")
    CaseChanges(tags=[tag])

    async def add_tag(context: ActivityContext, case: Selected) -> None:
        tags = CaseChanges(tags=[*case.tags, tag])
        await UpdateCaseActivity(context).run(UpdateParams(case.id, tags))

    return add_tag


def _numbers(form: Any) -> list[int]:
    numbers: list[int] = []
    for raw in form.getlist("case"):
        value = str(raw).strip()
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= INT64_MAX:
            raise InvalidInput(f"{value!r} is not a case number", field="case")
        if int(value) not in numbers:
            numbers.append(int(value))
    if not numbers:
        raise InvalidInput("select the cases first", field="case")
    if len(numbers) > BULK_LIMIT:
        raise InvalidInput(f"select at most {BULK_LIMIT} cases at once", field="case")
    return numbers


@router.post("/app/cases/bulk", response_class=HTMLResponse)
async def bulk(request: Request, viewer: PersonDep) -> Response:
    """One change to many cases: each case runs the same activity as a single change, in its
    own transaction, so a refused case is reported and the others still go through."""
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    try:
        viewer.principal.require(Role.AGENT, "changing cases")
        step = _bulk_step(form)
        numbers = _numbers(form)
    except Forbidden as refused:
        return render(request, viewer, "message.html", status=403, message=refused.detail)
    except (CasedeskError, ValidationError) as invalid:
        problem = (
            invalid.detail
            if isinstance(invalid, CasedeskError)
            else "tag: " + "; ".join(str(error["msg"]) for error in invalid.errors())
        )
        return render(request, viewer, "message.html", status=422, message=problem)
    outcomes = [await _bulk_one(request, viewer, number, step) for number in numbers]
    async with tenant_work(request, viewer) as uow:
        sidebar = await _sidebar(uow, viewer.principal)
    return render(
        request,
        viewer,
        "_case_bulk.html",
        **sidebar,
        view=None,
        done=[outcome.number for outcome in outcomes if outcome.problem is None],
        failed=[outcome for outcome in outcomes if outcome.problem is not None],
        back=str(form.get("back", "")) if str(form.get("back", "")).startswith("/app/") else "",
    )


async def _bulk_one(request: Request, viewer: Viewer, number: int, step: Any) -> BulkOutcome:
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            case = await _case(uow, number)
            seen = Selected(case.id, case.version, tuple(case.tags))
        async with tenant_work(request, viewer) as uow:
            context = ActivityContext.of(
                uow,
                viewer.principal,
                container_of(request).extensions,
                expected_version=seen.version,
            )
            await step(context, seen)
    except NotFound:
        return BulkOutcome(number, "no such case")
    except PreconditionFailed:
        return BulkOutcome(number, "the case changed meanwhile; try it again")
    except CasedeskError as refused:
        return BulkOutcome(number, refused.detail)
    except ValidationError as invalid:
        return BulkOutcome(number, "; ".join(str(error["msg"]) for error in invalid.errors()))
    return BulkOutcome(number, None)

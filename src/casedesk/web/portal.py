"""The customer portal at ``/portal/{workspace}``: a customer signs in by a one-time link
sent to their address, sees their own cases only, opens a case from a template the admins
marked public, replies, and rates a closed case.

The portal's cookie is its own (``casedesk_portal``, path ``/portal/``), so a customer's
session never reaches the workbench. Each change runs the case activity the API runs, with
the customer as the operator (``scenes.CUSTOMER_ACTIVITIES`` limits which); the portal
checks that the case is the customer's, and another's is a 404 like an unknown one.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from casedesk.activities import portal as signing
from casedesk.activities.add_comment import AddCommentActivity, CommentParams
from casedesk.activities.base import ActivityContext, Operator
from casedesk.activities.create_case import create_case
from casedesk.activities.rate_case import RateCaseActivity, RatingParams
from casedesk.activities.sign_in import csrf_matches
from casedesk.domain.cases.inputs import (
    AuthorRef,
    CaseDraft,
    CommentInput,
    CustomerRef,
    RatingInput,
)
from casedesk.domain.cases.lists import CaseQuery
from casedesk.domain.cases.reads import highlights
from casedesk.domain.search.finding import Searcher, compile_search
from casedesk.domain.search.query import parse
from casedesk.kit.errors import CasedeskError, InvalidInput, NotFound, Unauthenticated
from casedesk.kit.tracing import trace_or_new
from casedesk.kit.values import INT64_MAX
from casedesk.store.cases import CaseFilter
from casedesk.store.models import Case, Template
from casedesk.store.search import RELEVANCE, Narrowing
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.web import i18n
from casedesk.web.attachments import NO_SUCH_ATTACHMENT, attachment_response
from casedesk.web.forms import fields_of, values_of
from casedesk.web.pages import Viewer, problems, render
from casedesk.web.session import (
    BadCsrf,
    check_form_token,
    container_of,
    form_token,
    keep_form_token,
    plain_text_only,
    secure,
)

PORTAL_COOKIE = "casedesk_portal"
PAGE_SIZE = 25
COMMENTS_SHOWN = 200
router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
CaseNumber = Annotated[int, Path(ge=1, le=INT64_MAX, description="the case's number")]
Workspace = Annotated[str, Path(max_length=63)]


class NoSuchPortal(Exception):
    """A portal path of no (enabled) tenant, or a case the customer may not see."""

    def __init__(self, message: str = "no such page") -> None:
        self.message = message


class SignInToPortal(Exception):
    def __init__(self, workspace: str) -> None:
        self.workspace = workspace


@dataclass(frozen=True, slots=True)
class Visit:
    """Who looks at a portal page: the tenant whose portal it is, and the customer when
    signed in to it."""

    viewer: Viewer
    tenant_id: uuid.UUID
    workspace: str
    desk: str
    """the tenant's name, as the customer knows the help desk"""
    customer: signing.CustomerSession | None

    @property
    def signed(self) -> signing.CustomerSession:
        if self.customer is None:
            raise SignInToPortal(self.workspace)
        return self.customer

    def work(self, request: Request) -> UnitOfWork:
        return container_of(request).unit_of_work(self.tenant_id)

    def context(self, request: Request, uow: UnitOfWork) -> ActivityContext:
        customer = self.signed
        return ActivityContext(
            uow=uow,
            operator=Operator("customer", str(customer.customer_id), customer.email),
            tenant_id=customer.tenant_id,
            edition=customer.edition,
            extensions=container_of(request).extensions,
            trace=trace_or_new(),
        )


async def visit(request: Request, workspace: Workspace) -> Visit:
    container = container_of(request)
    async with container.unit_of_work() as uow:
        tenant = await uow.tenants.by_slug(workspace.lower())
    if tenant is None or not tenant.enabled:
        raise NoSuchPortal()
    customer = None
    token = request.cookies.get(PORTAL_COOKIE)
    if token:
        try:
            async with container.unit_of_work() as uow:
                customer = await signing.resolve(uow, token)
        except Unauthenticated:
            customer = None
    if customer is not None and customer.tenant_id != tenant.id:
        customer = None
    viewer = Viewer(
        language=i18n.negotiate(request.headers.get("accept-language")),
        csrf_token=customer.csrf_token if customer else "",
    )
    return Visit(viewer, tenant.id, tenant.slug, tenant.name, customer)


VisitDep = Annotated[Visit, Depends(visit)]


def install(app: FastAPI) -> None:
    app.include_router(router)

    @app.exception_handler(NoSuchPortal)
    async def _no_such_portal(request: Request, exc: NoSuchPortal) -> Response:
        viewer = Viewer(language=i18n.negotiate(request.headers.get("accept-language")))
        return render(request, viewer, "message.html", status=404, message=exc.message)

    @app.exception_handler(SignInToPortal)
    async def _sign_in_first(request: Request, exc: SignInToPortal) -> Response:
        back = _case_path(exc.workspace, request.url.path) if request.method == "GET" else None
        query = f"?next={quote(back, safe='/')}" if back else ""
        return RedirectResponse(f"/portal/{exc.workspace}{query}", status_code=303)


def _case_path(workspace: str, value: str | None) -> str | None:
    """Where a customer goes back to after signing in: one of the portal's case pages
    (a mail's rating link), or none."""
    if value and re.fullmatch(rf"/portal/{re.escape(workspace)}/cases/[0-9]{{1,19}}", value):
        return value
    return None


def _page(
    request: Request, seen: Visit, page: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    return render(
        request,
        seen.viewer,
        page,
        status=status,
        workspace=seen.workspace,
        desk=seen.desk,
        customer=seen.customer,
        **context,
    )


async def _check_csrf(request: Request, seen: Visit) -> None:
    presented = str((await request.form()).get("csrf_token", "")) or None
    if not csrf_matches(seen.signed.csrf_token, presented):
        raise BadCsrf("the form is out of date or came from another site; reload the page")


# --- signing in ------------------------------------------------------------------------------


def _sign_in_page(
    request: Request,
    seen: Visit,
    *,
    email: str = "",
    error: str | None = None,
    sent: bool = False,
    mailed: bool = False,
    link: str | None = None,
    back: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    token = form_token(request)
    response = _page(
        request,
        seen,
        "portal_sign_in.html",
        status=status,
        email=email,
        error=error,
        sent=sent,
        mailed=mailed,
        next=back or "",
        link=link,
        form_token=token,
    )
    keep_form_token(request, response, token)
    return response


@router.get("/portal/{workspace}", response_class=HTMLResponse)
async def portal_home(request: Request, seen: VisitDep) -> Response:
    if seen.customer is not None:
        return RedirectResponse(f"/portal/{seen.workspace}/cases", status_code=303)
    back = _case_path(seen.workspace, request.query_params.get("next"))
    return _sign_in_page(request, seen, back=back)


@router.post("/portal/{workspace}/sign-in", response_class=HTMLResponse)
async def ask_for_link(request: Request, seen: VisitDep) -> Response:
    await check_form_token(request)
    form = await request.form()
    email = str(form.get("email", ""))[:320]
    back = _case_path(seen.workspace, str(form.get("next", "")))
    container = container_of(request)
    base = container.settings.public_url or str(request.base_url)
    try:
        async with seen.work(request) as uow:
            issued, mailed = await signing.ask_for_link(
                uow,
                container.box,
                email=email,
                base_url=base,
                workspace=seen.workspace,
                then=back,
            )
    except InvalidInput:
        return _sign_in_page(request, seen, email=email, error="address", status=422, back=back)
    except signing.LinkTooSoon as soon:
        page = _sign_in_page(request, seen, email=email, error="soon", status=429, back=back)
        page.headers["Retry-After"] = str(soon.extra.get("retry_after", 60))
        return page
    link = None
    if not mailed and container.settings.shows_portal_links:
        link = signing.link_url(base, seen.workspace, issued.token, then=back)
    return _sign_in_page(request, seen, email=email, sent=True, mailed=mailed, link=link)


@router.get("/portal/{workspace}/link/{token}", response_class=HTMLResponse)
async def link_page(request: Request, token: str, seen: VisitDep) -> Response:
    """The link asks for one click: a mail scanner that fetches it spends nothing."""
    token_field = form_token(request)
    back = _case_path(seen.workspace, request.query_params.get("next")) or ""
    response = _page(
        request, seen, "portal_link.html", token=token, form_token=token_field, next=back
    )
    keep_form_token(request, response, token_field)
    return response


@router.post("/portal/{workspace}/link/{token}")
async def use_link(request: Request, token: str, seen: VisitDep) -> Response:
    await check_form_token(request)
    try:
        async with seen.work(request) as uow:
            session_token, _ = await signing.sign_in_by_link(uow, token)
    except NotFound as gone:
        raise NoSuchPortal(gone.detail) from None
    given = str((await request.form()).get("next", "")) or request.query_params.get("next")
    back = _case_path(seen.workspace, given)
    response = RedirectResponse(back or f"/portal/{seen.workspace}/cases", status_code=303)
    response.set_cookie(
        PORTAL_COOKIE,
        session_token,
        httponly=True,
        samesite="lax",
        secure=secure(request),
        path="/portal/",
    )
    return response


@router.post("/portal/{workspace}/sign-out")
async def sign_out(request: Request, seen: VisitDep) -> Response:
    await _check_csrf(request, seen)
    async with seen.work(request) as uow:
        await signing.sign_out(uow, seen.signed.session_id)
    response = RedirectResponse(f"/portal/{seen.workspace}", status_code=303)
    response.delete_cookie(PORTAL_COOKIE, path="/portal/", secure=secure(request), httponly=True)
    return response


# --- the customer's cases ----------------------------------------------------------------------


FIELDS_ARE_FOR_AGENTS = "search by words, phrases and case numbers here"


async def _customer_search(uow: UnitOfWork, q: str) -> Narrowing:
    """A customer's search of their own cases: words, phrases, exclusions and case numbers
    over what they can read (never the internal notes); the agents' fields are not theirs."""
    parsed = parse(q)
    if parsed.fields:
        raise InvalidInput(FIELDS_ARE_FOR_AGENTS, field="q")
    return await compile_search(uow, parsed, Searcher(user_id=None, internal=False))


@router.get("/portal/{workspace}/cases", response_class=HTMLResponse)
async def my_cases(request: Request, seen: VisitDep) -> Response:
    customer = seen.signed
    cursor = request.query_params.get("cursor") or None
    q = (request.query_params.get("q") or "").strip() or None
    found: dict[uuid.UUID, dict[str, str] | None] = {}
    async with seen.work(request) as uow:
        public = await _public_templates(uow)
        try:
            narrowing = await _customer_search(uow, q) if q else None
        except InvalidInput as refused:
            return _page(
                request,
                seen,
                "portal_cases.html",
                status=422,
                cases=[],
                next_cursor=None,
                can_open=bool(public),
                q=q,
                problem=refused.detail,
                highlights={},
            )
        ranked = narrowing is not None and narrowing.ranked
        try:
            page = await uow.cases.list_page(
                CaseFilter(customer_id=customer.customer_id),
                sort=RELEVANCE if ranked else "-updated",
                limit=PAGE_SIZE,
                cursor=cursor,
                narrowing=narrowing,
            )
        except CasedeskError:
            raise NoSuchPortal("this list's cursor is not one casedesk gave") from None
        if q:
            asked = CaseQuery(q=q, searcher=Searcher(user_id=None, internal=False))
            found = await highlights(uow, [(c.id, c.title) for c in page.items], asked)
    return _page(
        request,
        seen,
        "portal_cases.html",
        cases=page.items,
        next_cursor=page.next_cursor,
        can_open=bool(public),
        q=q or "",
        problem=None,
        highlights=found,
    )


async def _public_templates(uow: UnitOfWork) -> list[Template]:
    return [template for template in await uow.templates.all() if template.public]


async def _own_case(uow: UnitOfWork, seen: Visit, number: int) -> Case:
    case = await uow.cases.by_number(number)
    if case is None or case.customer_id != seen.signed.customer_id:
        raise NoSuchPortal("no such case")
    return case


async def _case_page(
    request: Request,
    seen: Visit,
    number: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    async with seen.work(request) as uow:
        case = await _own_case(uow, seen, number)
        comments = await uow.comments.oldest_first(
            case.id, limit=COMMENTS_SHOWN, cursor=None, public_only=True
        )
        files = await uow.attachments.of_comments(
            comment.id
            for comment in comments.items
            if comment.attachment_count and comment.deleted_at is None
        )
    return _page(
        request,
        seen,
        "portal_case.html",
        status=status,
        case=case,
        comments=comments.items,
        files=files,
        error=error,
    )


@router.get("/portal/{workspace}/attachments/{attachment_id}")
async def attachment(request: Request, attachment_id: uuid.UUID, seen: VisitDep) -> Response:
    """A file of a public comment on one of the customer's own cases; any other is unknown."""
    if seen.customer is None:
        raise SignInToPortal(seen.workspace)
    async with seen.work(request) as uow:
        row = await uow.attachments.find(attachment_id)
        comment = await uow.comments.find(row.comment_id) if row and row.comment_id else None
        case = await uow.cases.find(row.case_id) if row and comment else None
    shown = (
        row is not None
        and comment is not None
        and comment.public
        and comment.deleted_at is None
        and case is not None
        and case.customer_id == seen.signed.customer_id
    )
    response = await attachment_response(request, row) if shown and row else None
    if response is None:
        raise NoSuchPortal(NO_SUCH_ATTACHMENT)
    return response


@router.get("/portal/{workspace}/cases/new", response_class=HTMLResponse)
async def new_case_form(request: Request, seen: VisitDep) -> Response:
    if seen.customer is None:
        raise SignInToPortal(seen.workspace)
    return await _new_case_page(request, seen, request.query_params.get("template"))


async def _new_case_page(
    request: Request,
    seen: Visit,
    chosen: str | None,
    *,
    posted: Any = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    async with seen.work(request) as uow:
        public = await _public_templates(uow)
    template = next((t for t in public if t.code == chosen), None)
    if template is None and len(public) == 1:
        template = public[0]
    return _page(
        request,
        seen,
        "portal_new.html",
        status=status,
        templates=public,
        chosen=template,
        fields=fields_of(template.form_schema) if template is not None else [],
        posted=posted or {},
        error=error,
    )


@router.post("/portal/{workspace}/cases")
async def open_case(request: Request, seen: VisitDep) -> Response:
    await _check_csrf(request, seen)
    customer = seen.signed
    form = await request.form()
    code = str(form.get("template", ""))
    try:
        async with seen.work(request) as uow:
            await uow.begin_write()
            template = next((t for t in await _public_templates(uow) if t.code == code), None)
            if template is None:
                raise InvalidInput("choose what the case is about", field="template")
            draft = CaseDraft(
                template=template.code,
                title=str(form.get("title", "")),
                description=str(form.get("description", "")).strip() or None,
                customer=CustomerRef(email=customer.email, name=customer.name),
                channel="portal",
                form=values_of(fields_of(template.form_schema), form),
            )
            outcome = await create_case(seen.context(request, uow), draft)
    except ValidationError as invalid:
        problem = "; ".join(problems(invalid))
        return await _new_case_page(request, seen, code, posted=form, error=problem, status=422)
    except CasedeskError as refused:
        return await _new_case_page(
            request, seen, code, posted=form, error=refused.detail, status=refused.status
        )
    number = outcome.body["number"]
    return RedirectResponse(f"/portal/{seen.workspace}/cases/{number}", status_code=303)


@router.get("/portal/{workspace}/cases/{number}", response_class=HTMLResponse)
async def case_page(request: Request, number: CaseNumber, seen: VisitDep) -> Response:
    return await _case_page(request, seen, number)


@router.post("/portal/{workspace}/cases/{number}/comments")
async def reply(request: Request, number: CaseNumber, seen: VisitDep) -> Response:
    await _check_csrf(request, seen)
    customer = seen.signed
    text = str((await request.form()).get("body", "")).strip()
    try:
        async with seen.work(request) as uow:
            await uow.begin_write()
            case = await _own_case(uow, seen, number)
            if case.closed:
                raise InvalidInput("this case is closed; open a new one", field="body")
            if not text:
                raise InvalidInput("write your reply first", field="body")
            author = AuthorRef(type="customer", email=customer.email, name=customer.name)
            body = CommentInput(body=text, public=True, author=author, channel="portal")
            await AddCommentActivity(seen.context(request, uow)).run(CommentParams(case.id, body))
    except (CasedeskError, ValidationError) as refused:
        detail = refused.detail if isinstance(refused, CasedeskError) else "the reply is too long"
        status = refused.status if isinstance(refused, CasedeskError) else 422
        return await _case_page(request, seen, number, error=detail, status=status)
    return RedirectResponse(f"/portal/{seen.workspace}/cases/{number}", status_code=303)


@router.post("/portal/{workspace}/cases/{number}/rating")
async def rate(request: Request, number: CaseNumber, seen: VisitDep) -> Response:
    await _check_csrf(request, seen)
    form = await request.form()
    try:
        async with seen.work(request) as uow:
            await uow.begin_write()
            case = await _own_case(uow, seen, number)
            score = str(form.get("score", ""))
            if score not in {"1", "2", "3", "4", "5"}:
                raise InvalidInput("choose a rating from 1 to 5", field="score")
            rating = RatingInput(
                score=int(score), comment=str(form.get("comment", "")).strip() or None
            )
            await RateCaseActivity(seen.context(request, uow)).run(RatingParams(case.id, rating))
    except (CasedeskError, ValidationError) as refused:
        detail = refused.detail if isinstance(refused, CasedeskError) else "the comment is too long"
        status = refused.status if isinstance(refused, CasedeskError) else 422
        return await _case_page(request, seen, number, error=detail, status=status)
    return RedirectResponse(f"/portal/{seen.workspace}/cases/{number}", status_code=303)

"""The pages of signing in and out, setting a password by a one-time link, and the
workbench's start page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from casedesk.activities import sign_in as signing
from casedesk.kit.errors import InvalidInput, NotFound, Unauthenticated
from casedesk.web import (
    admin,
    admin_delivery,
    admin_mailboxes,
    admin_notifications,
    admin_people,
    admin_rules,
    attachments,
    cases,
    integrations,
    macros,
    portal,
    traces,
)
from casedesk.web.pages import Viewer, render
from casedesk.web.session import (
    WORKSPACE_COOKIE,
    BadCsrf,
    BadForm,
    SignInFirst,
    check_csrf,
    check_form_token,
    container_of,
    end_session,
    form_token,
    keep_form_token,
    optional_viewer,
    person,
    plain_text_only,
    safe_next,
    start_session,
    tenant_work,
    to_sign_in,
)

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
ViewerDep = Annotated[Viewer, Depends(optional_viewer)]
PersonDep = Annotated[Viewer, Depends(person)]


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(cases.router)
    app.include_router(attachments.router)
    app.include_router(admin.router)
    app.include_router(integrations.router)
    app.include_router(admin_rules.router)
    portal.install(app)
    app.include_router(traces.router)
    app.include_router(macros.router)
    app.include_router(admin_people.router)
    app.include_router(admin_delivery.router)
    app.include_router(admin_mailboxes.router)
    app.include_router(admin_notifications.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(SignInFirst)
    async def _sign_in_first(request: Request, exc: SignInFirst) -> Response:
        return to_sign_in(exc.next_path)

    @app.exception_handler(admin.NotAnAdmin)
    async def _not_an_admin(request: Request, exc: admin.NotAnAdmin) -> Response:
        viewer = await optional_viewer(request)
        return render(request, viewer, "message.html", status=403, message=exc.detail)

    @app.exception_handler(BadForm)
    async def _bad_form(request: Request, exc: BadForm) -> Response:
        viewer = await optional_viewer(request)
        return render(request, viewer, "message.html", status=422, message=exc.detail)

    @app.exception_handler(BadCsrf)
    async def _bad_csrf(request: Request, exc: BadCsrf) -> Response:
        viewer = await optional_viewer(request)
        return render(request, viewer, "message.html", status=403, message=exc.detail)


def _sign_in_page(
    request: Request,
    viewer: Viewer,
    *,
    workspace: str,
    email: str = "",
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    token = form_token(request)
    response = render(
        request,
        viewer,
        "sign_in.html",
        status=status,
        workspace=workspace,
        email=email,
        error=error,
        notice=notice,
        form_token=token,
        next=safe_next(request.query_params.get("next")),
    )
    keep_form_token(request, response, token)
    return response


@router.get("/", response_class=RedirectResponse)
async def home(viewer: ViewerDep) -> RedirectResponse:
    return RedirectResponse("/app" if viewer.principal else "/sign-in", status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, viewer: ViewerDep) -> Response:
    if viewer.principal is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    workspace = request.query_params.get("workspace") or request.cookies.get(WORKSPACE_COOKIE, "")
    notice = None
    if request.query_params.get("done") == "password":
        notice = "password"
    return _sign_in_page(request, viewer, workspace=workspace[:63], notice=notice)


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request, viewer: ViewerDep) -> Response:
    await check_form_token(request)
    form = await request.form()
    workspace = str(form.get("workspace", ""))[:63]
    email = str(form.get("email", ""))[:320]
    password = str(form.get("password", ""))[:1024]
    container = container_of(request)
    try:
        async with container.unit_of_work() as uow:
            signed = await signing.sign_in(
                uow,
                workspace=workspace,
                email=email,
                password=password,
                user_agent=request.headers.get("user-agent"),
                address=request.client.host if request.client else None,
            )
    except signing.SignInBlocked as blocked:
        page = _sign_in_page(
            request, viewer, workspace=workspace, email=email, error="blocked", status=429
        )
        page.headers["Retry-After"] = str(blocked.retry_after)
        return page
    except Unauthenticated:
        return _sign_in_page(
            request, viewer, workspace=workspace, email=email, error="wrong", status=401
        )
    response = RedirectResponse(safe_next(str(form.get("next", ""))), status_code=303)
    start_session(request, response, signed.token, signed.principal.tenant_slug)
    return response


def _forgot_page(
    request: Request, viewer: Viewer, *, workspace: str, email: str = "", asked: bool = False
) -> HTMLResponse:
    token = form_token(request)
    response = render(
        request,
        viewer,
        "forgot_password.html",
        workspace=workspace,
        email=email,
        asked=asked,
        form_token=token,
    )
    keep_form_token(request, response, token)
    return response


@router.get("/sign-in/forgot", response_class=HTMLResponse)
async def forgot_form(request: Request, viewer: ViewerDep) -> Response:
    workspace = request.query_params.get("workspace") or request.cookies.get(WORKSPACE_COOKIE, "")
    return _forgot_page(request, viewer, workspace=workspace[:63])


@router.post("/sign-in/forgot", response_class=HTMLResponse)
async def forgot(request: Request, viewer: ViewerDep) -> Response:
    """A reset link mailed to the address, when it is a user's of the workspace and the
    workspace can send mail; the answer is the same page whatever the case."""
    await check_form_token(request)
    form = await request.form()
    workspace = str(form.get("workspace", ""))[:63]
    email = str(form.get("email", ""))[:320]
    container = container_of(request)
    async with container.unit_of_work() as uow:
        tenant = await uow.tenants.by_slug(workspace.strip().lower()) if workspace.strip() else None
    if tenant is not None and tenant.enabled:
        base = container.settings.public_url or str(request.base_url).rstrip("/")
        async with container.unit_of_work(tenant.id) as uow:
            await signing.request_reset(uow, container.box, email=email, base_url=base)
    return _forgot_page(request, viewer, workspace=workspace, email=email, asked=True)


@router.post("/sign-out")
async def sign_out(request: Request, viewer: PersonDep) -> Response:
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    everywhere = (await request.form()).get("everywhere") == "1"
    async with tenant_work(request, viewer) as uow:
        if everywhere:
            await signing.sign_out_everywhere(uow, viewer.principal)
        else:
            await signing.sign_out(uow, viewer.principal)
    response = RedirectResponse("/sign-in", status_code=303)
    end_session(request, response)
    return response


@router.get("/set-password/{token}", response_class=HTMLResponse)
async def set_password_form(request: Request, token: str, viewer: ViewerDep) -> Response:
    try:
        async with container_of(request).unit_of_work() as uow:
            link, user, tenant = await signing.open_link(uow, token)
    except NotFound as gone:
        return render(request, viewer, "message.html", status=404, message=gone.detail)
    return _password_page(request, viewer, link.purpose, user.email, tenant.name)


def _password_page(
    request: Request,
    viewer: Viewer,
    purpose: str,
    email: str,
    tenant: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    token = form_token(request)
    response = render(
        request,
        viewer,
        "set_password.html",
        status=status,
        purpose=purpose,
        email=email,
        tenant=tenant,
        error=error,
        form_token=token,
    )
    keep_form_token(request, response, token)
    return response


@router.post("/set-password/{token}", response_class=HTMLResponse)
async def set_password(request: Request, token: str, viewer: ViewerDep) -> Response:
    await check_form_token(request)
    form = await request.form()
    password = str(form.get("password", ""))[:1024]
    again = str(form.get("password_again", ""))[:1024]
    container = container_of(request)
    try:
        async with container.unit_of_work() as uow:
            link, user, tenant = await signing.open_link(uow, token)
        if password != again:
            return _password_page(
                request, viewer, link.purpose, user.email, tenant.name, error="differ", status=422
            )
        async with container.unit_of_work() as uow:
            user, tenant = await signing.set_password_by_link(uow, token, password)
    except NotFound as gone:
        return render(request, viewer, "message.html", status=404, message=gone.detail)
    except InvalidInput as bad:
        return _password_page(
            request, viewer, link.purpose, user.email, tenant.name, error=bad.detail, status=422
        )
    return RedirectResponse(f"/sign-in?workspace={tenant.slug}&done=password", status_code=303)


_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)


async def _me_page(
    request: Request, viewer: Viewer, *, saved: bool = False, error: str | None = None
) -> Response:
    assert viewer.principal is not None
    async with tenant_work(request, viewer) as uow:
        user = await uow.users.get(viewer.principal.user_id)
    return render(
        request,
        viewer,
        "me.html",
        status=422 if error else 200,
        saved=saved,
        error=error,
        chosen_locale=user.locale,
        chosen_zone=user.time_zone,
        zones=_ZONES,
    )


@router.get("/app/me", response_class=HTMLResponse)
async def me(request: Request, viewer: PersonDep) -> Response:
    return await _me_page(request, viewer, saved=request.query_params.get("saved") == "1")


@router.post("/app/me")
async def save_me(request: Request, viewer: PersonDep) -> Response:
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    locale = str(form.get("locale", "")).strip() or None
    time_zone = str(form.get("time_zone", "")).strip()[:64] or None
    try:
        async with tenant_work(request, viewer) as uow:
            await signing.set_preferences(uow, viewer.principal, locale=locale, time_zone=time_zone)
    except InvalidInput as bad:
        return await _me_page(request, viewer, error=bad.detail)
    return RedirectResponse("/app/me?saved=1", status_code=303)

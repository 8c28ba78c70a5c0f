"""Who is looking at a page: the session cookie resolved to a person, and the CSRF check.

The cookie is ``HttpOnly`` and ``SameSite=Lax``, ``Secure`` when casedesk is reached over
TLS. Every state-changing request carries the session's CSRF token (a form's hidden
field, or the ``X-CSRF-Token`` header htmx sends); the sign-in and set-password forms,
which come before any session, use a double-submit cookie instead.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from casedesk.activities.sign_in import csrf_matches, resolve_session
from casedesk.bootstrap import Container
from casedesk.kit.errors import CasedeskError, Unauthenticated
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.web import i18n
from casedesk.web.pages import Viewer

SESSION_COOKIE = "casedesk_session"
FORM_COOKIE = "casedesk_form"
WORKSPACE_COOKIE = "casedesk_workspace"
CSRF_FIELD = "csrf_token"
FORM_FIELD = "form_token"
CSRF_HEADER = "X-CSRF-Token"


class SignInFirst(Exception):
    """A page that needs a signed-in person was asked for without one."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class BadForm(CasedeskError):
    status = 422
    title = "Unprocessable content"
    slug = "invalid-input"


async def plain_text_only(request: Request) -> None:
    """Refuse a page's query or form that carries a NUL character (no database stores one,
    and PostgreSQL refuses it): a 422 naming the field, before anything reads it."""
    fields = list(request.query_params.multi_items())
    if request.method == "POST":
        fields += [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    for name, value in fields:
        if "\x00" in value or "\x00" in name:
            raise BadForm(f"{name[:40]}: a NUL character is not text")


class BadCsrf(CasedeskError):
    status = 403
    title = "Forbidden"
    slug = "csrf"


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def secure(request: Request) -> bool:
    public = container_of(request).settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


async def optional_viewer(request: Request) -> Viewer:
    """The page's viewer: the signed-in person when the cookie names a live session."""
    language = i18n.negotiate(request.headers.get("accept-language"))
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return Viewer(language=language)
    try:
        async with container_of(request).unit_of_work() as uow:
            signed = await resolve_session(uow, token)
    except Unauthenticated:
        return Viewer(language=language)
    language = i18n.negotiate(request.headers.get("accept-language"), signed.locale)
    return Viewer(
        language=language,
        principal=signed.principal,
        csrf_token=signed.csrf_token,
        time_zone=signed.time_zone,
    )


@asynccontextmanager
async def tenant_work(request: Request, viewer: Viewer) -> AsyncIterator[UnitOfWork]:
    """A unit of work in the signed-in person's tenant."""
    assert viewer.principal is not None
    async with container_of(request).unit_of_work(viewer.principal.tenant_id) as uow:
        yield uow


async def person(request: Request) -> Viewer:
    """The signed-in person, or a redirect to the sign-in page that comes back here."""
    viewer = await optional_viewer(request)
    if viewer.principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInFirst(target)
    return viewer


async def check_csrf(request: Request, viewer: Viewer) -> None:
    """Refuse a state-changing request whose CSRF token is not the session's."""
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        presented = str((await request.form()).get(CSRF_FIELD, "")) or None
    if not csrf_matches(viewer.csrf_token, presented):
        raise BadCsrf("the form is out of date or came from another site; reload the page")


def form_token(request: Request) -> str:
    """The double-submit token of a form shown before sign-in (the cookie's, or a new one)."""
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)


async def check_form_token(request: Request) -> None:
    cookie = request.cookies.get(FORM_COOKIE)
    presented = str((await request.form()).get(FORM_FIELD, "")) or None
    if cookie is None or not csrf_matches(cookie, presented):
        raise BadCsrf("the form is out of date or came from another site; reload the page")


def keep_form_token(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        FORM_COOKIE, token, httponly=True, samesite="strict", secure=secure(request), path="/"
    )


def start_session(request: Request, response: Response, token: str, workspace: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure(request), path="/"
    )
    response.set_cookie(
        WORKSPACE_COOKIE,
        workspace,
        max_age=400 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=secure(request),
        path="/",
    )


def end_session(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure(request), httponly=True)


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a path of this site only."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/app"
    return value


def to_sign_in(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/sign-in?next={quote(next_path, safe='/')}", status_code=303)

"""The admins' screens of people: users (invited by a one-time link, their role changed,
deactivated, sent a reset link) and API keys (made with their key shown once, revoked).

Each form runs the API's activity (``activities/identity.py``, ``activities/sign_in.py``), so
the rules are the API's: the last active admin cannot be demoted or deactivated, a link
replaces the user's earlier ones. A link or a key is in the answer to the form that made it
and nowhere else: casedesk keeps only its hash. When a mailbox sends the tenant's mail, a
link is mailed to the user instead and the page says where it went."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from casedesk.activities import identity, notify_mail
from casedesk.activities import sign_in as signing
from casedesk.domain.identity.roles import Role
from casedesk.kit.errors import CasedeskError, NotFound
from casedesk.kit.text import Email
from casedesk.store.models import User
from casedesk.web.admin import _admin, _page
from casedesk.web.pages import Viewer, problems, render
from casedesk.web.session import (
    check_csrf,
    container_of,
    person,
    plain_text_only,
    tenant_work,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
PersonDep = Annotated[Viewer, Depends(person)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LISTED = 200
"""Users and keys shown on one page; further ones through the page's next link."""


class Invitation(BaseModel):
    """The invitation form: the same fields and checks as the API's ``UserCreate``."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    email: Email
    role: Role


class Change(BaseModel):
    """A change of a user: the same fields as the API's ``UserUpdate``."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    active: bool | None = None


class NewKey(BaseModel):
    """The new key form: the same fields as the API's ``ApiKeyCreate``."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    user_id: uuid.UUID


def _refusal(refused: CasedeskError) -> str:
    """An activity's refusal, naming the field it concerns when it names one."""
    field = refused.extra.get("field")
    return f"{field}: {refused.detail}" if field else refused.detail


def _id(text: str) -> uuid.UUID:
    """An id in a page's path; what is not one is a page that does not exist."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(f"nothing is found by {text[:40]!r}") from None


def _gone(request: Request, viewer: Viewer, gone: NotFound) -> HTMLResponse:
    return render(request, viewer, "message.html", status=404, message=gone.detail)


def _base_url(request: Request) -> str:
    return container_of(request).settings.public_url or str(request.base_url).rstrip("/")


# --- users ---------------------------------------------------------------------------------


async def _users_page(
    request: Request,
    viewer: Viewer,
    *,
    errors: list[str] | None = None,
    form: Any = None,
    link: dict[str, Any] | None = None,
    status: int | None = None,
) -> Response:
    cursor = request.query_params.get("cursor") or None
    async with tenant_work(request, viewer) as uow:
        try:
            page = await uow.users.list_page(limit=LISTED, cursor=cursor)
        except CasedeskError:
            page = await uow.users.list_page(limit=LISTED, cursor=None)
        can_mail = await notify_mail.can_send(uow)
    notice = {"changed": "changed"}.get(request.query_params.get("done", ""))
    return await _page(
        request,
        viewer,
        "admin_users.html",
        status=status or (422 if errors else 200),
        users=page.items,
        next_cursor=page.next_cursor,
        roles=[role.value for role in Role],
        errors=errors or [],
        form=form or {"role": Role.AGENT.value},
        link=link,
        notice=notice,
        can_mail=can_mail,
    )


@router.get("/app/admin/users", response_class=HTMLResponse)
async def users(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _users_page(request, viewer)


@router.post("/app/admin/users", response_class=HTMLResponse)
async def invite(request: Request, viewer: PersonDep) -> Response:
    """Create the user and show their invitation link, this once."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    typed = {name: str(form.get(name, "")) for name in ("name", "email", "role")}
    try:
        body = Invitation.model_validate(typed)
        async with tenant_work(request, viewer) as uow:
            user = await identity.create_user(
                uow, viewer.principal, email=body.email, name=body.name, role=body.role
            )
        async with tenant_work(request, viewer) as uow:
            handed = await signing.hand_out_link(
                uow,
                viewer.principal,
                container_of(request).box,
                user_id=user.id,
                base_url=_base_url(request),
                purpose="invite",
            )
    except ValidationError as invalid:
        return await _users_page(request, viewer, errors=problems(invalid), form=typed)
    except CasedeskError as refused:
        return await _users_page(request, viewer, errors=[_refusal(refused)], form=typed)
    link = _shown_link(user, handed)
    return await _users_page(request, viewer, link=link, status=201)


def _shown_link(user: User, handed: signing.HandedLink) -> dict[str, Any]:
    """What the page says of a new link: where it was mailed, or the link itself (shown
    only when it was not mailed)."""
    return {
        "purpose": handed.issued.link.purpose,
        "url": None if handed.mailed_to else handed.url,
        "mailed_to": handed.mailed_to,
        "email": user.email,
        "expires_at": handed.issued.link.expires_at,
    }


@router.post("/app/admin/users/{user_id}", response_class=HTMLResponse)
async def change_user(request: Request, user_id: str, viewer: PersonDep) -> Response:
    """A new role, or deactivate / reactivate (``active`` is ``true`` or ``false``)."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    typed = {name: str(form[name]) for name in ("role", "active") if name in form}
    try:
        changed = _id(user_id)
        body = Change.model_validate(typed)
        async with tenant_work(request, viewer) as uow:
            await identity.update_user(
                uow, viewer.principal, changed, role=body.role, active=body.active
            )
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except ValidationError as invalid:
        return await _users_page(request, viewer, errors=problems(invalid))
    except CasedeskError as refused:
        status = 409 if refused.status == 409 else 422
        return await _users_page(request, viewer, errors=[_refusal(refused)], status=status)
    return RedirectResponse("/app/admin/users?done=changed", status_code=303)


@router.post("/app/admin/users/{user_id}/password-link", response_class=HTMLResponse)
async def password_link(request: Request, user_id: str, viewer: PersonDep) -> Response:
    """A new one-time link (a reset for a user with a password, else a new invitation)."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        holder = _id(user_id)
        async with tenant_work(request, viewer) as uow:
            handed = await signing.hand_out_link(
                uow,
                viewer.principal,
                container_of(request).box,
                user_id=holder,
                base_url=_base_url(request),
            )
        async with tenant_work(request, viewer) as uow:
            user = await uow.users.get(holder)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except CasedeskError as refused:
        return await _users_page(request, viewer, errors=[_refusal(refused)])
    return await _users_page(request, viewer, link=_shown_link(user, handed), status=201)


# --- API keys ------------------------------------------------------------------------------


async def _keys_page(
    request: Request,
    viewer: Viewer,
    *,
    errors: list[str] | None = None,
    form: Any = None,
    created: dict[str, Any] | None = None,
    status: int | None = None,
) -> Response:
    cursor = request.query_params.get("cursor") or None
    async with tenant_work(request, viewer) as uow:
        try:
            page = await uow.api_keys.list_page(limit=LISTED, cursor=cursor)
        except CasedeskError:
            page = await uow.api_keys.list_page(limit=LISTED, cursor=None)
        people = await _everyone(uow)
    assert viewer.principal is not None
    notice = {"revoked": "revoked"}.get(request.query_params.get("done", ""))
    return await _page(
        request,
        viewer,
        "admin_keys.html",
        status=status or (422 if errors else 200),
        keys=page.items,
        next_cursor=page.next_cursor,
        people=people,
        owners=[user for user in people.values() if user.active],
        errors=errors or [],
        form=form or {"user_id": str(viewer.principal.user_id)},
        created=created,
        notice=notice,
    )


async def _everyone(uow: Any) -> dict[uuid.UUID, User]:
    """The tenant's users by id (a key's owner, the owners to choose from)."""
    found: dict[uuid.UUID, User] = {}
    cursor = None
    while True:
        page = await uow.users.list_page(limit=LISTED, cursor=cursor)
        found.update((user.id, user) for user in page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


@router.get("/app/admin/keys", response_class=HTMLResponse)
async def keys(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _keys_page(request, viewer)


@router.post("/app/admin/keys", response_class=HTMLResponse)
async def create_key(request: Request, viewer: PersonDep) -> Response:
    """Make a key for the user chosen and show it, this once."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    form = await request.form()
    typed = {name: str(form.get(name, "")) for name in ("name", "user_id")}
    try:
        body = NewKey.model_validate(typed)
        async with tenant_work(request, viewer) as uow:
            made = await identity.create_api_key(
                uow, viewer.principal, name=body.name, user_id=body.user_id
            )
    except ValidationError as invalid:
        return await _keys_page(request, viewer, errors=problems(invalid), form=typed)
    except NotFound:
        return await _keys_page(
            request, viewer, errors=["user_id: choose the owner from the list"], form=typed
        )
    except CasedeskError as refused:
        return await _keys_page(request, viewer, errors=[_refusal(refused)], form=typed)
    created = {"name": made.key.name, "key": made.plaintext}
    return await _keys_page(request, viewer, created=created, status=201)


@router.get("/app/admin/keys/{key_id}/revoke", response_class=HTMLResponse)
async def confirm_revoke(request: Request, key_id: str, viewer: PersonDep) -> Response:
    """Ask before revoking: the programs that use the key stop working at once."""
    _admin(viewer)
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            key = await identity.visible_api_key(uow, viewer.principal, _id(key_id))
            owner = await uow.users.get(key.user_id)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return await _page(request, viewer, "admin_keys_revoke.html", key=key, owner=owner, errors=[])


@router.post("/app/admin/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            await identity.revoke_api_key(uow, viewer.principal, _id(key_id))
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return RedirectResponse("/app/admin/keys?done=revoked", status_code=303)

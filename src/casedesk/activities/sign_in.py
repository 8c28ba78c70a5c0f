"""People signing in from a browser: passwords, sessions, one-time links.

API keys stay what programs use; these are what a person uses. Every function is one
operation with its own commit. Sign-in runs before any tenant is bound: the workspace
(the tenant's slug) is named in the form, and the queries say so explicitly.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from casedesk.activities import notify_mail
from casedesk.domain import notifications
from casedesk.domain.identity import passwords
from casedesk.domain.identity.principal import Principal, principal_of
from casedesk.domain.identity.roles import Role
from casedesk.domain.identity.sessions import (
    LIFETIME,
    TOUCH_EVERY,
    hash_token,
    link_lifetime,
    looks_like_token,
    new_token,
    session_ended,
)
from casedesk.domain.identity.users import normalise_email
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox
from casedesk.kit.errors import CasedeskError, InvalidInput, NotFound, Unauthenticated
from casedesk.store.models import OneTimeLink, Tenant, User, WebSession
from casedesk.store.unit_of_work import UnitOfWork

WRONG = "the workspace, e-mail address or password is wrong"
LINK_GONE = "this link is unknown, already used or expired; ask an admin for a new one"


class SignInBlocked(CasedeskError):
    """Too many failed sign-ins in a row: the account waits before the next try."""

    status = 429
    title = "Too many requests"
    slug = "sign-in-blocked"

    def __init__(self, seconds: int) -> None:
        super().__init__(
            f"too many failed sign-ins; try again in {seconds} seconds", retry_after=seconds
        )
        self.retry_after = seconds


@dataclass(frozen=True, slots=True)
class SignedIn:
    principal: Principal
    token: str
    """the cookie's value, never stored"""


@dataclass(frozen=True, slots=True)
class IssuedLink:
    link: OneTimeLink
    token: str


def _principal(user: User, tenant: Tenant, session: WebSession | None) -> Principal:
    return principal_of(user, tenant, session_id=None if session is None else session.id)


async def sign_in(
    uow: UnitOfWork,
    *,
    workspace: str,
    email: str,
    password: str,
    user_agent: str | None,
    address: str | None,
) -> SignedIn:
    """A new session for the person whose workspace, address and password these are.

    ``uow`` is bound to no tenant. A wrong password counts against the account; a right one
    resets the count, and rehashes a hash made with weaker settings.
    """
    await uow.begin_write()
    now = utcnow()
    tenant = await uow.tenants.by_slug(workspace.strip().lower()) if workspace.strip() else None
    user = None
    if tenant is not None and tenant.enabled and "@" in email:
        user = await uow.users.by_email_of_tenant(tenant.id, normalise_email(email))
    if user is not None and user.sign_in_blocked_until and user.sign_in_blocked_until > now:
        raise SignInBlocked(max(1, int((user.sign_in_blocked_until - now).total_seconds()) + 1))
    known = user.password_hash if user is not None else None
    if not passwords.verify_password(known, password) or user is None or not user.active:
        if user is not None and tenant is not None:
            user.failed_sign_ins += 1
            user.sign_in_blocked_until = passwords.blocked_until(user.failed_sign_ins, now)
            await uow.commit()
        raise Unauthenticated(WRONG)
    assert tenant is not None
    assert user.password_hash is not None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.failed_sign_ins, user.sign_in_blocked_until = 0, None
    token = new_token()
    session = uow.web_sessions.add(
        WebSession(
            tenant_id=tenant.id,
            user_id=user.id,
            token_hash=token.token_hash,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + LIFETIME,
            user_agent=(user_agent or "")[:300] or None,
            address=(address or "")[:64] or None,
        )
    )
    await uow.flush()
    principal = _principal(user, tenant, session)
    await uow.commit()
    return SignedIn(principal=principal, token=token.plaintext)


@dataclass(frozen=True, slots=True)
class SessionOf:
    """Who a session cookie signs in, with what a page needs of them."""

    principal: Principal
    csrf_token: str
    locale: str | None
    time_zone: str | None


async def resolve_session(uow: UnitOfWork, token: str) -> SessionOf:
    """The signed-in person behind a session cookie, the session's CSRF token, and the
    person's screen language and time zone (read with the session, in one query).

    The session's last use is recorded at most every few minutes, in its own transaction.
    """
    if not looks_like_token(token):
        raise Unauthenticated("sign in first")
    found = await uow.web_sessions.by_hash_any_tenant(hash_token(token))
    if found is None:
        raise Unauthenticated("sign in first")
    session, user, tenant = found
    now = utcnow()
    ended = session_ended(
        now=now,
        created_at=session.created_at,
        last_seen_at=session.last_seen_at,
        revoked_at=session.revoked_at,
    )
    if ended is not None:
        raise Unauthenticated(f"{ended}; sign in again")
    if not user.active or not tenant.enabled:
        raise Unauthenticated("this account can no longer sign in")
    found_session = SessionOf(
        principal=_principal(user, tenant, session),
        csrf_token=session.csrf_token,
        locale=user.locale,
        time_zone=user.time_zone,
    )
    stale = now - session.last_seen_at >= TOUCH_EVERY
    await uow.rollback()
    if stale:
        await uow.begin_write()
        await uow.web_sessions.touch_any_tenant(session.id)
        await uow.commit()
    return found_session


def csrf_matches(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected, presented)


async def sign_out(uow: UnitOfWork, principal: Principal) -> None:
    if principal.session_id is None:
        return
    await uow.begin_write()
    session = await uow.web_sessions.get(principal.session_id)
    if session.revoked_at is None:
        session.revoked_at = utcnow()
    await uow.commit()


async def sign_out_everywhere(uow: UnitOfWork, principal: Principal) -> int:
    """End every session of the principal's user, this one too; how many ended."""
    await uow.begin_write()
    ended = await uow.web_sessions.end_all_of(principal.user_id)
    await uow.commit()
    return ended


async def issue_link(
    uow: UnitOfWork, actor: Principal | None, *, user_id: uuid.UUID, purpose: str | None = None
) -> IssuedLink:
    """A one-time link for the user to set a password: an invitation for someone without
    one, a reset otherwise (unless ``purpose`` says). It replaces the user's earlier unused
    links."""
    issued, _ = await _issue(uow, actor, user_id, purpose)
    await uow.commit()
    return issued


@dataclass(frozen=True, slots=True)
class HandedLink:
    issued: IssuedLink
    url: str
    mailed_to: str | None
    """The address the link was mailed to; none: the tenant cannot send mail, show it."""


async def hand_out_link(
    uow: UnitOfWork,
    actor: Principal,
    box: SecretBox,
    *,
    user_id: uuid.UUID,
    base_url: str,
    purpose: str | None = None,
) -> HandedLink:
    """``issue_link``, and the link mailed to the user (an ``invitation`` or a
    ``password_reset``, in their language) when the tenant can send mail, in the same
    transaction."""
    issued, user = await _issue(uow, actor, user_id, purpose)
    url = link_url(base_url, issued.token)
    mailed = await _mail_link(uow, box, user, issued, url, inviter=actor.name)
    await uow.commit()
    return HandedLink(issued, url, user.email if mailed else None)


def link_url(base_url: str, token: str) -> str:
    """Where a password link points: the page that sets the password."""
    return f"{base_url.rstrip('/')}/set-password/{token}"


RESET_EVERY = timedelta(seconds=60)
"""A self-service reset makes at most one link a minute for an account."""


async def request_reset(uow: UnitOfWork, box: SecretBox, *, email: str, base_url: str) -> None:
    """The sign-in page's "forgot your password?": a reset link mailed to the active user
    with this address, when the tenant (``uow``'s) can send mail. Nothing tells whether the
    address is known: an unknown one, a deactivated user, a tenant without mail and a second
    request within ``RESET_EVERY`` (the throttle) all return as a sent one does, and send
    nothing."""
    if "@" not in email:
        return
    await uow.begin_write()
    if not await notify_mail.can_send(uow):
        return
    user = await uow.users.by_email(normalise_email(email))
    if user is None or not user.active:
        return
    newest = await uow.links.newest_of(user.id)
    if newest is not None and utcnow() - newest < RESET_EVERY:
        return
    issued, user = await _issue(uow, None, user.id, "reset")
    await _mail_link(uow, box, user, issued, link_url(base_url, issued.token), inviter=None)
    await uow.commit()


async def _mail_link(
    uow: UnitOfWork,
    box: SecretBox,
    user: User,
    issued: IssuedLink,
    url: str,
    *,
    inviter: str | None,
) -> bool:
    """The link as mail to the user, planned in the transaction; False: none can be sent."""
    if not await notify_mail.can_send(uow):
        return False
    tenant = await uow.tenants.get(user.tenant_id)
    lifetime = link_lifetime(issued.link.purpose)
    values: dict[str, Any] = {
        "desk": notify_mail.desk_of(tenant.name),
        "user": {"name": user.name, "email": user.email},
    }
    if issued.link.purpose == "invite":
        kind: notifications.Kind = "invitation"
        values |= {
            "inviter": {"name": inviter or tenant.name},
            "hours": int(lifetime.total_seconds() // 3600),
        }
    else:
        kind = "password_reset"
        values["minutes"] = int(lifetime.total_seconds() // 60)
    await notify_mail.plan_mail(
        uow,
        box,
        kind=kind,
        to=notify_mail.Recipient(user.email, user.name),
        language=user.locale,
        values=values,
        link=url,
    )
    return True


async def _issue(
    uow: UnitOfWork, actor: Principal | None, user_id: uuid.UUID, purpose: str | None
) -> tuple[IssuedLink, User]:
    if actor is not None:
        actor.require(Role.ADMIN, "inviting a user or resetting a password")
    if purpose not in (None, "invite", "reset"):
        raise InvalidInput("a link is for 'invite' or 'reset'", field="purpose")
    await uow.begin_write()
    user = await uow.users.get(user_id)
    purpose = purpose or ("reset" if user.has_password else "invite")
    if not user.active:
        raise InvalidInput("this user is deactivated; activate them first", field="user_id")
    await uow.links.spend_others(user.id)
    token = new_token()
    now = utcnow()
    link = uow.links.add(
        OneTimeLink(
            purpose=purpose,
            user_id=user.id,
            token_hash=token.token_hash,
            created_at=now,
            created_by=None if actor is None else actor.user_id,
            expires_at=now + link_lifetime(purpose),
        )
    )
    return IssuedLink(link=link, token=token.plaintext), user


async def open_link(uow: UnitOfWork, token: str) -> tuple[OneTimeLink, User, Tenant]:
    """The link's holder, when the link still works (404 otherwise)."""
    found = None
    if looks_like_token(token):
        found = await uow.links.by_hash_any_tenant(hash_token(token))
    if found is None:
        raise NotFound(LINK_GONE)
    link, user, tenant = found
    if link.used_at is not None or link.expires_at <= utcnow() or not user.active:
        raise NotFound(LINK_GONE)
    if not tenant.enabled:
        raise NotFound(LINK_GONE)
    return link, user, tenant


async def set_password_by_link(uow: UnitOfWork, token: str, password: str) -> tuple[User, Tenant]:
    """Spend the link on a new password; every session the user had ends."""
    await uow.begin_write()
    link, user, tenant = await open_link(uow, token)
    problem = passwords.password_problem(password, user.email)
    if problem is not None:
        raise InvalidInput(problem, field="password")
    user.password_hash = passwords.hash_password(password)
    user.failed_sign_ins, user.sign_in_blocked_until = 0, None
    link.used_at = utcnow()
    await uow.web_sessions.end_all_of(user.id)
    await uow.commit()
    return user, tenant


LANGUAGES = ("en", "zh-Hans")


async def set_preferences(
    uow: UnitOfWork, principal: Principal, *, locale: str | None, time_zone: str | None
) -> User:
    """The signed-in person's own screen language (None: the browser's) and time zone."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    if locale is not None and locale not in LANGUAGES:
        raise InvalidInput(f"the language is one of {', '.join(LANGUAGES)}", field="locale")
    if time_zone is not None:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(
                f"{time_zone!r} is not a time zone, e.g. Europe/Berlin or Asia/Shanghai",
                field="time_zone",
            ) from None
        if time_zone not in available_timezones():
            raise InvalidInput(f"{time_zone!r} is not a time zone", field="time_zone")
    await uow.begin_write()
    user = await uow.users.get(principal.user_id)
    user.locale, user.time_zone = locale, time_zone
    await uow.commit()
    return user

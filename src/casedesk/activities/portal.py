"""Customers signing in to the portal: a one-time link to their address, then a session.

A customer has no password. They ask for a link with their address; the link works once,
for ``PORTAL_LINK_LIFETIME``, and opens a session like a person's (the cookie holds the
token, the database its hash). An address casedesk does not know yet becomes a customer,
as a first mail from it would. Whether an address is known is never told: the answer to a
request is the same either way. What a signed-in customer may do runs through the case
activities with the customer as the operator (see ``CUSTOMER_ACTIVITIES``).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError

from casedesk.activities import notify_mail
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.domain.identity.sessions import (
    LIFETIME,
    PORTAL_LINK_EVERY,
    PORTAL_LINK_LIFETIME,
    TOUCH_EVERY,
    hash_token,
    looks_like_token,
    new_token,
    session_ended,
)
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox
from casedesk.kit.errors import CasedeskError, InvalidInput, NotFound, Unauthenticated
from casedesk.kit.text import Email
from casedesk.store.models import Customer, PortalLink, PortalSession, Tenant
from casedesk.store.unit_of_work import UnitOfWork

_EMAIL: TypeAdapter[str] = TypeAdapter(Email)
LINK_GONE = "this sign-in link is unknown, already used or expired; ask for a new one"


class LinkTooSoon(CasedeskError):
    """A link was issued to this address a moment ago."""

    status = 429
    title = "Too many requests"
    slug = "portal-link-too-soon"


@dataclass(frozen=True, slots=True)
class PortalLinkIssued:
    customer: Customer
    token: str
    """the link's secret part, never stored"""
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CustomerSession:
    """Who a portal cookie signs in."""

    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    edition: str
    customer_id: uuid.UUID
    email: str
    name: str | None
    session_id: uuid.UUID
    csrf_token: str


def link_url(base: str, workspace: str, token: str, *, then: str | None = None) -> str:
    """Where a sign-in link points: the portal's page that spends it (``then``: the portal
    page it leads to afterwards, e.g. the case a rating link was for)."""
    url = f"{base.rstrip('/')}/portal/{workspace}/link/{token}"
    return url if then is None else f"{url}?next={quote(then, safe='/')}"


def address_of(value: str) -> str:
    """The customer's address as stored, or a 422 naming the field."""
    try:
        return _EMAIL.validate_python(value)
    except ValueError:
        raise InvalidInput("this is not an e-mail address", field="email") from None


async def _customer(uow: UnitOfWork, email: str) -> Customer:
    customer = await uow.customers.by_email(email)
    if customer is not None:
        return customer
    try:
        async with uow.session.begin_nested():
            customer = uow.customers.add(Customer(tenant_id=uow.tenant_id, email=email))
    except IntegrityError:
        customer = await uow.customers.by_email(email)
    assert customer is not None
    return customer


async def issue_link(
    uow: UnitOfWork, actor: Principal | None, *, email: str, throttled: bool = True
) -> PortalLinkIssued:
    """A sign-in link for the customer with this address, made a customer if new.

    ``uow`` is bound to the portal's tenant. ``actor`` is the agent handing a link to a
    customer (through the API), or None: the customer asking on the portal, where one link
    a minute is the most an address gets, or an operator at the CLI (``throttled=False``).
    """
    issued = await _issue(uow, actor, email=email, throttled=throttled)
    await uow.commit()
    return issued


async def ask_for_link(
    uow: UnitOfWork,
    box: SecretBox,
    *,
    email: str,
    base_url: str,
    workspace: str,
    then: str | None = None,
) -> tuple[PortalLinkIssued, bool]:
    """The customer asking on the portal: ``issue_link``, and the link mailed to them
    (``portal_sign_in``) when the tenant can send mail, in the same transaction. The
    second value says whether it was mailed."""
    issued = await _issue(uow, None, email=email, throttled=True)
    mailed = await notify_mail.can_send(uow)
    if mailed:
        tenant = await uow.tenants.get(issued.customer.tenant_id)
        await notify_mail.plan_mail(
            uow,
            box,
            kind="portal_sign_in",
            to=notify_mail.Recipient(issued.customer.email, issued.customer.name),
            language=None,
            values={
                "desk": notify_mail.desk_of(tenant.name),
                "minutes": int(PORTAL_LINK_LIFETIME.total_seconds() // 60),
            },
            link=link_url(base_url, workspace, issued.token, then=then),
        )
    await uow.commit()
    return issued, mailed


async def _issue(
    uow: UnitOfWork, actor: Principal | None, *, email: str, throttled: bool
) -> PortalLinkIssued:
    if actor is not None:
        actor.require(Role.AGENT, "giving a customer a portal link")
    address = address_of(email)
    await uow.begin_write()
    customer = await _customer(uow, address)
    now = utcnow()
    newest = await uow.portal_links.newest_of(customer.id)
    if throttled and actor is None and newest is not None and now - newest < PORTAL_LINK_EVERY:
        wait = int((PORTAL_LINK_EVERY - (now - newest)).total_seconds()) + 1
        raise LinkTooSoon(
            f"a link was sent to this address a moment ago; try again in {wait} seconds",
            retry_after=wait,
        )
    await uow.portal_links.spend_others(customer.id)
    token = new_token()
    uow.portal_links.add(
        PortalLink(
            tenant_id=customer.tenant_id,
            customer_id=customer.id,
            token_hash=token.token_hash,
            created_at=now,
            expires_at=now + PORTAL_LINK_LIFETIME,
        )
    )
    return PortalLinkIssued(customer, token.plaintext, now + PORTAL_LINK_LIFETIME)


async def sign_in_by_link(uow: UnitOfWork, token: str) -> tuple[str, Customer]:
    """Spend the link on a new portal session: the cookie's token and the customer.

    ``uow`` is bound to the portal's tenant, so a link of another tenant's portal is
    unknown here.
    """
    await uow.begin_write()
    link = await uow.portal_links.by_hash(hash_token(token)) if looks_like_token(token) else None
    now = utcnow()
    if link is None or link.used_at is not None or link.expires_at <= now:
        raise NotFound(LINK_GONE)
    link.used_at = now
    customer = await uow.customers.get(link.customer_id)
    session_token = new_token()
    uow.portal_sessions.add(
        PortalSession(
            tenant_id=link.tenant_id,
            customer_id=customer.id,
            token_hash=session_token.token_hash,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + LIFETIME,
        )
    )
    await uow.commit()
    return session_token.plaintext, customer


async def resolve(uow: UnitOfWork, token: str) -> CustomerSession:
    """The customer behind a portal cookie (``uow`` bound to no tenant)."""
    found = None
    if looks_like_token(token):
        found = await uow.portal_sessions.by_hash_any_tenant(hash_token(token))
    if found is None:
        raise Unauthenticated("sign in first")
    session, customer, tenant = found
    now = utcnow()
    ended = session_ended(
        now=now,
        created_at=session.created_at,
        last_seen_at=session.last_seen_at,
        revoked_at=session.revoked_at,
    )
    if ended is not None or not tenant.enabled:
        raise Unauthenticated(f"{ended or 'the help desk is closed'}; sign in again")
    signed = _session_of(session, customer, tenant)
    stale = now - session.last_seen_at >= TOUCH_EVERY
    await uow.rollback()
    if stale:
        await uow.begin_write()
        await uow.portal_sessions.touch_any_tenant(session.id)
        await uow.commit()
    return signed


def _session_of(session: PortalSession, customer: Customer, tenant: Tenant) -> CustomerSession:
    return CustomerSession(
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        tenant_name=tenant.name,
        edition=tenant.edition,
        customer_id=customer.id,
        email=customer.email,
        name=customer.name,
        session_id=session.id,
        csrf_token=session.csrf_token,
    )


async def sign_out(uow: UnitOfWork, session_id: uuid.UUID) -> None:
    """End one portal session (``uow`` bound to its tenant)."""
    await uow.begin_write()
    session = await uow.portal_sessions.find(session_id)
    if session is not None and session.revoked_at is None:
        session.revoked_at = utcnow()
    await uow.commit()

"""Links into the customer portal, handed to a customer by an agent."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from casedesk.activities import portal
from casedesk.api import API_V1
from casedesk.api.deps import ContainerDep, PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.api.schemas.identity import PortalLinkIn, PortalLinkOut

router = APIRouter(prefix=f"{API_V1}/portal-links", tags=["portal"], route_class=ApiRoute)


@router.post(
    "",
    response_model=PortalLinkOut,
    status_code=status.HTTP_201_CREATED,
    summary="A one-time link that signs a customer in to the portal (agents)",
)
async def portal_link(
    body: PortalLinkIn,
    request: Request,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
) -> PortalLinkOut:
    issued = await portal.issue_link(uow, principal, email=body.email)
    base = container.settings.public_url or str(request.base_url)
    return PortalLinkOut(
        customer_id=issued.customer.id,
        url=portal.link_url(base, principal.tenant_slug, issued.token),
        expires_at=issued.expires_at,
    )

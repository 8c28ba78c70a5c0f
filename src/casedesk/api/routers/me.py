from __future__ import annotations

from fastapi import APIRouter

from casedesk.api import API_V1
from casedesk.api.deps import PrincipalDep
from casedesk.api.routing import ApiRoute
from casedesk.api.schemas.identity import Me, MeUser, TenantOut

router = APIRouter(prefix=API_V1, tags=["identity"], route_class=ApiRoute)


@router.get("/me", response_model=Me, summary="The caller: tenant, user and role")
async def read_me(principal: PrincipalDep) -> Me:
    return Me(
        tenant=TenantOut(
            id=principal.tenant_id,
            slug=principal.tenant_slug,
            name=principal.tenant_name,
            edition=principal.edition,
        ),
        user=MeUser(
            id=principal.user_id, email=principal.email, name=principal.name, role=principal.role
        ),
        role=principal.role,
        api_key_id=principal.api_key_id,
    )

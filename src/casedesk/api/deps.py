"""FastAPI dependencies: the container, the caller, and the caller's unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from casedesk.activities.identity import authenticate
from casedesk.bootstrap import Container
from casedesk.domain.identity.principal import Principal
from casedesk.kit.errors import Unauthenticated
from casedesk.store.unit_of_work import UnitOfWork

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cdk_...`")


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_principal(
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send an API key as `Authorization: Bearer <key>`")
    interval = timedelta(seconds=container.settings.api_key_touch_seconds)
    async with container.unit_of_work() as uow:
        principal = await authenticate(uow, credentials.credentials.strip(), interval)
    structlog.contextvars.bind_contextvars(
        tenant=principal.tenant_slug, user_id=str(principal.user_id)
    )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_unit_of_work(
    container: ContainerDep, principal: PrincipalDep
) -> AsyncIterator[UnitOfWork]:
    async with container.unit_of_work(principal.tenant_id) as uow:
        yield uow


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]

"""FastAPI dependencies: the container, the caller, and the caller's unit of work."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated

import structlog
from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from casedesk.activities.base import ActivityContext
from casedesk.activities.identity import authenticate
from casedesk.bootstrap import Container
from casedesk.domain.identity.principal import Principal
from casedesk.kit.cursors import MAX_CURSOR_CHARS
from casedesk.kit.errors import InvalidInput, Unauthenticated
from casedesk.kit.values import INT32_MAX
from casedesk.store.unit_of_work import UnitOfWork

CursorParam = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR_CHARS, description="the `next_cursor` of the page before"),
]
"""The cursor of a list that pages: opaque, bound to its list and sort (``kit.cursors``)."""

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cdk_...`")


async def get_container(request: Request) -> Container:
    # async: a plain def dependency would be run in a worker thread on every request
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
    principal = await authenticate(
        container.database, container.principals, credentials.credentials.strip(), interval
    )
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


# ASCII digits only: str.isdigit() also takes "²", which int() refuses.
_VERSION_TAG = re.compile(r'(?:W/)?"?([0-9]{1,10})"?')


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    tag = _VERSION_TAG.fullmatch(if_match.strip())
    if tag is None or int(tag[1]) > INT32_MAX:
        raise InvalidInput(
            'If-Match must be the case version as sent in ETag, e.g. "3"', field="If-Match"
        )
    return int(tag[1])


async def get_activity_context(
    container: ContainerDep,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    if_match: Annotated[str | None, Header(description="the case version (ETag) you saw")] = None,
) -> ActivityContext:
    return ActivityContext.of(
        uow, principal, container.extensions, expected_version=_expected_version(if_match)
    )


ActivityContextDep = Annotated[ActivityContext, Depends(get_activity_context)]

"""Connections: a tenant's accounts at services; OAuth2 authorization and its callback."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from casedesk.activities import connections
from casedesk.api import API_V1
from casedesk.api.deps import ContainerDep, CursorParam, PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.api.schemas.connections import (
    AuthorizeOut,
    CallbackOut,
    CheckOut,
    ConnectionIn,
    ConnectionOut,
    ConnectionPage,
    ConnectionUpdate,
    SecretOut,
)
from casedesk.bootstrap import Container
from casedesk.integrations.manifests import ConnectorManifest
from casedesk.kit.errors import CasedeskError
from casedesk.store.models import Connection
from casedesk.store.unit_of_work import UnitOfWork

router = APIRouter(prefix=f"{API_V1}/connections", tags=["connections"], route_class=ApiRoute)
oauth_router = APIRouter(prefix=f"{API_V1}/oauth", tags=["connections"], route_class=ApiRoute)
CALLBACK_PATH = connections.OAUTH_CALLBACK_PATH
Manifests = dict[tuple[str, int], ConnectorManifest | None]


async def _manifest(
    uow: UnitOfWork, connection: Connection, known: Manifests
) -> ConnectorManifest | None:
    """The connection's manifest, once per connector version of a page."""
    key = (connection.connector, connection.connector_version)
    if key not in known:
        try:
            known[key] = await connections.manifest_for(uow, *key)
        except CasedeskError:  # a connector that is no longer there: shown without it
            known[key] = None
    return known[key]


async def _out(
    uow: UnitOfWork, container: Container, connection: Connection, known: Manifests | None = None
) -> ConnectionOut:
    manifest = await _manifest(uow, connection, {} if known is None else known)
    states, readable = connections.secret_states(manifest, container.box, connection)
    return ConnectionOut(
        id=connection.id,
        name=connection.name,
        connector=connection.connector,
        connector_version=connection.connector_version,
        auth=manifest.auth.type if manifest else "unknown",
        settings=connection.settings,
        secrets={name: SecretOut(set=s.set, mask=s.mask) for name, s in states.items()},
        secrets_readable=readable,
        status=connection.status,
        status_reason=connection.status_reason,
        authorized=connection.token_sealed is not None,
        token_expires_at=connection.token_expires_at,
        created_at=connection.created_at,
        updated_at=connection.updated_at,
    )


@router.post("", response_model=ConnectionOut, status_code=status.HTTP_201_CREATED)
async def create_connection(
    body: ConnectionIn, principal: PrincipalDep, uow: UnitOfWorkDep, container: ContainerDep
) -> ConnectionOut:
    made = await connections.create_connection(
        uow,
        principal,
        container.box,
        name=body.name,
        connector=body.connector,
        connector_version=body.connector_version,
        settings=body.settings,
        secrets=body.secrets,
    )
    return await _out(uow, container, made)


@router.get("", response_model=ConnectionPage, summary="The tenant's connections, oldest first")
async def list_connections(
    uow: UnitOfWorkDep,
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: CursorParam = None,
) -> ConnectionPage:
    page = await uow.connections.list_page(limit=limit, cursor=cursor)
    known: Manifests = {}
    return ConnectionPage(
        items=[await _out(uow, container, c, known) for c in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/{connection_id}", response_model=ConnectionOut)
async def read_connection(
    connection_id: uuid.UUID, uow: UnitOfWorkDep, container: ContainerDep
) -> ConnectionOut:
    return await _out(uow, container, await uow.connections.get(connection_id))


@router.put("/{connection_id}", response_model=ConnectionOut)
async def replace_connection(
    connection_id: uuid.UUID,
    body: ConnectionUpdate,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
) -> ConnectionOut:
    changed = await connections.replace_connection(
        uow,
        principal,
        container.box,
        connection_id,
        name=body.name,
        connector=body.connector,
        connector_version=body.connector_version,
        settings=body.settings,
        secrets=body.secrets,
    )
    return await _out(uow, container, changed)


@router.delete(
    "/{connection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a connection no workflow uses (409 naming those that do)",
)
async def delete_connection(
    connection_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep
) -> Response:
    await connections.delete_connection(uow, principal, connection_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _redirect_uri(request: Request, container: Container) -> str:
    base = container.settings.public_url or str(request.base_url).rstrip("/")
    return base + CALLBACK_PATH


@router.post(
    "/{connection_id}/authorize",
    response_model=AuthorizeOut,
    summary="Start an OAuth2 authorization: the provider's URL to open in a browser (admins)",
    description="The URL carries a random `state` (good for one callback within 10 minutes)"
    " and the PKCE `code_challenge`; the provider sends the browser back to"
    f" `{CALLBACK_PATH}`, which completes the authorization.",
)
async def authorize_connection(
    connection_id: uuid.UUID,
    request: Request,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    container: ContainerDep,
) -> AuthorizeOut:
    started = await connections.start_authorization(
        uow,
        principal,
        container.box,
        connection_id,
        redirect_uri=_redirect_uri(request, container),
    )
    return AuthorizeOut(
        authorize_url=started.authorize_url,
        state=started.state,
        code_challenge=started.code_challenge,
        code_challenge_method="S256" if started.code_challenge else None,
        redirect_uri=started.redirect_uri,
        expires_at=started.expires_at,
    )


@router.post(
    "/{connection_id}/test",
    response_model=CheckOut,
    summary="Send the connector's test request through the connection (admins)",
)
async def test_connection(
    connection_id: uuid.UUID, principal: PrincipalDep, uow: UnitOfWorkDep, container: ContainerDep
) -> CheckOut:
    checked = await connections.check_connection(
        uow, principal, container.hub, container.box, connection_id
    )
    return CheckOut(
        ok=checked.ok, status=checked.status, reason=checked.reason, trace_id=checked.trace_id
    )


OAuthText = Annotated[str | None, Query(max_length=2048)]
Ignored = Annotated[str | None, Query(max_length=2048, include_in_schema=False)]


@oauth_router.get(
    "/callback",
    response_model=CallbackOut,
    summary="Where the OAuth2 provider sends the browser back (no API key: the state is proof)",
    description="Exchanges the code for tokens and makes the connection active. A state"
    " that is unknown, used or expired is a 400 that says which. When the connection's"
    " admin page started the authorization in this browser, the answer is a redirect back"
    " to that page instead (`?done=connected`, or `?done=refused`).",
)
async def oauth_callback(
    request: Request,
    container: ContainerDep,
    state: OAuthText = None,
    code: OAuthText = None,
    error: OAuthText = None,
    error_description: OAuthText = None,
    error_uri: Ignored = None,
    # What providers add to the redirect besides RFC 6749's parameters (Google, Microsoft,
    # RFC 9207's issuer); accepted so that the callback is not refused, and not used.
    scope: Ignored = None,
    iss: Ignored = None,
    authuser: Ignored = None,
    prompt: Ignored = None,
    hd: Ignored = None,
    session_state: Ignored = None,
) -> CallbackOut | RedirectResponse:
    if not state:
        raise connections.AuthorizationStateInvalid(
            "the callback carries no state; start again with "
            "POST /api/v1/connections/{id}/authorize"
        )
    page = connections.page_flow_connection(
        request.cookies.get(connections.PAGE_FLOW_COOKIE), state
    )
    try:
        connection = await connections.complete_authorization(
            container.database,
            container.hub,
            container.box,
            state=state,
            code=code,
            error=error,
            error_description=error_description,
        )
    except CasedeskError:
        if page is None:
            raise
        return _back_to_page(page, "refused")
    if page is not None:
        return _back_to_page(page, "connected")
    return CallbackOut(
        connection_id=connection.id,
        status=connection.status,
        token_expires_at=connection.token_expires_at,
    )


def _back_to_page(connection_id: uuid.UUID, done: str) -> RedirectResponse:
    """The end of an authorization the connection's page started: back to that page, the
    browser's mark spent (how it went is on the page, read from the connection)."""
    back = RedirectResponse(f"/app/admin/connections/{connection_id}?done={done}", 303)
    back.delete_cookie(connections.PAGE_FLOW_COOKIE, path=CALLBACK_PATH, httponly=True)
    return back

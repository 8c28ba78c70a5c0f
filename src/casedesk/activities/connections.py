"""Connections: a tenant's accounts at services, and the client that calls through one.

A connection names its connector and pins a version of it (a built-in pins the shipped
version), holds settings checked against the manifest's ``connection.settings`` schema, and
secrets sealed together as one JSON object, never shown again. ``manifest_for`` resolves a
connector by id; ``open_client`` gives the ``ConnectorClient`` of a connection, its secrets
opened and, for OAuth2, its access token from ``AccessTokens``.

OAuth2 (``integrations.oauth`` speaks the protocol): ``start_authorization`` gives the
provider's authorize URL with a random state, kept hashed with the sealed PKCE verifier for
ten minutes; ``complete_authorization`` takes the provider's callback, spends the state
once and exchanges the code for tokens, kept sealed with their expiry.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.orm.exc import StaleDataError

from casedesk.domain.cases.forms import validate_form
from casedesk.domain.events import CONNECTION, Subject, new_event
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.integrations.catalogue import builtin
from casedesk.integrations.expressions import ExpressionError
from casedesk.integrations.hub import Hub
from casedesk.integrations.manifests import ConnectorManifest, parse_manifest
from casedesk.integrations.manifests.auth import (
    ApiKeyAuth,
    BearerAuth,
    OAuth2ClientCredentials,
    OAuth2Code,
)
from casedesk.integrations.oauth import (
    AUTHORIZATION_LIFETIME,
    InvalidGrant,
    NeedsReauthorization,
    OAuthScheme,
    Pkce,
    TokenEndpoint,
    TokenRefused,
    Tokens,
    authorize_url,
    new_state,
    state_hash,
)
from casedesk.integrations.runtime import Account, ConnectorClient
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox, SecretUnreadable
from casedesk.kit.errors import CasedeskError, Conflict, InvalidInput, NotFound
from casedesk.kit.tracing import trace_or_new
from casedesk.store.database import Database
from casedesk.store.models import Authorization, Connection
from casedesk.store.unit_of_work import UnitOfWork

ACTIVE, NEEDS_REAUTH = "active", "needs_reauth"
NEEDS_REAUTH_EVENT = "connection.needs_reauth"
NOT_AUTHORIZED = "not authorized yet: POST /api/v1/connections/{id}/authorize and follow the URL"


class AuthorizationStateInvalid(CasedeskError):
    """The ``state`` of an OAuth2 callback is not one casedesk handed out, or not any more."""

    status = 400
    title = "OAuth2 state invalid"
    slug = "oauth-state-invalid"


class AuthorizationRefused(CasedeskError):
    """The provider, or the admin on its consent page, did not grant access."""

    status = 400
    title = "OAuth2 authorization refused"
    slug = "oauth-authorization-refused"


# --- the connector a connection uses ---------------------------------------------------


async def manifest_for(uow: UnitOfWork, connector: str, version: int | None) -> ConnectorManifest:
    """The connector's manifest: a built-in one, or a published version of the tenant's own
    (the latest when ``version`` is None)."""
    manifest, _ = await _pinned(uow, connector, version)
    return manifest


async def _pinned(
    uow: UnitOfWork, connector: str, version: int | None
) -> tuple[ConnectorManifest, int]:
    """The manifest and the version a connection pins: a built-in's shipped version, or a
    published version of the tenant's own connector (the latest when none is asked for)."""
    shipped = builtin(connector)
    if shipped is not None:
        if version not in (None, shipped.version):
            raise InvalidInput(
                f"built-in connector {connector!r} is at version {shipped.version}",
                field="connector_version",
            )
        return shipped, shipped.version
    own = await uow.connectors.by_code(connector)
    if own is None:
        raise InvalidInput(f"no connector {connector!r}", field="connector")
    if own.latest_version == 0:
        raise InvalidInput(
            f"connector {connector!r} has no published version; publish it first",
            field="connector",
        )
    number = own.latest_version if version is None else version
    found = await uow.connectors.version(own.id, number)
    if found is None:
        raise InvalidInput(
            f"connector {connector!r} has no published version {number}",
            field="connector_version",
        )
    return parse_manifest(found.manifest), number


# --- secrets -------------------------------------------------------------------------------


def open_secrets(box: SecretBox, sealed: str | None) -> dict[str, str]:
    if sealed is None:
        return {}
    opened: dict[str, str] = orjson.loads(box.open(sealed))
    return opened


def _seal_secrets(box: SecretBox, secrets: Mapping[str, str]) -> str | None:
    return box.seal(orjson.dumps(dict(sorted(secrets.items()))).decode()) if secrets else None


def _merged_secrets(
    manifest: ConnectorManifest, kept: Mapping[str, str], given: Mapping[str, str | None]
) -> dict[str, str]:
    """``kept`` with what ``given`` sets; an empty or null value clears a field."""
    declared = [secret.name for secret in manifest.connection.secrets]
    unknown = sorted(set(given) - set(declared))
    if unknown:
        has = ", ".join(declared) or "none"
        raise InvalidInput(
            f"connector {manifest.id!r} has no secret fields {unknown} (it has: {has})",
            field="secrets",
            errors=[
                {
                    "field": f"secrets.{name}",
                    "message": f"not a secret field of connector {manifest.id!r} (it has: {has})",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ],
        )
    in_headers = _header_secrets(manifest)
    unsendable = sorted(
        name for name, value in given.items() if name in in_headers and value and not _ascii(value)
    )
    if unsendable:
        raise InvalidInput(
            f"the secrets {unsendable} are sent in a header, which carries visible ASCII only",
            field="secrets",
            errors=[
                {
                    "field": f"secrets.{name}",
                    "message": "sent in a header: visible ASCII characters only",
                    "type": "string_pattern_mismatch",
                }
                for name in unsendable
            ],
        )
    merged = dict(kept)
    for name, value in given.items():
        if value:
            merged[name] = value
        else:
            merged.pop(name, None)
    return merged


def _header_secrets(manifest: ConnectorManifest) -> set[str]:
    """The secret fields the connector's auth sends in a header as they are."""
    scheme = manifest.auth
    if isinstance(scheme, BearerAuth):
        return {scheme.secret_field}
    if isinstance(scheme, ApiKeyAuth) and scheme.in_ == "header":
        return {scheme.secret_field}
    return set()


def _ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()


@dataclass(frozen=True, slots=True)
class SecretState:
    set: bool
    mask: str | None


MASK_MIN_LENGTH = 12
"""A secret shows its last four characters only when it is at least this long, so that the
mask never gives away most of a short one."""


def secret_states(
    manifest: ConnectorManifest | None, box: SecretBox, connection: Connection
) -> tuple[dict[str, SecretState], bool]:
    """Each secret field as set or not, with a mask; and whether the secrets could be opened
    (with none of the configured keys, every field shows as unset)."""
    try:
        opened = open_secrets(box, connection.secrets_sealed)
        readable = True
    except SecretUnreadable:
        opened, readable = {}, False
    names = [secret.name for secret in manifest.connection.secrets] if manifest else []
    states = {}
    for name in [*names, *sorted(set(opened) - set(names))]:
        value = opened.get(name, "")
        mask = None
        if value:
            mask = "****" + value[-4:] if len(value) >= MASK_MIN_LENGTH else "****"
        states[name] = SecretState(bool(value), mask)
    return states, readable


# --- writes ----------------------------------------------------------------------------------


def _check_settings(manifest: ConnectorManifest, settings: dict[str, Any]) -> None:
    validate_form(manifest.connection.settings, settings, field="settings")


def _initial_status(manifest: ConnectorManifest) -> tuple[str, str | None]:
    if isinstance(manifest.auth, OAuth2Code):
        return NEEDS_REAUTH, NOT_AUTHORIZED
    return ACTIVE, None


async def _commit(uow: UnitOfWork) -> None:
    try:
        await uow.commit()
    except StaleDataError:
        raise Conflict("the connection was changed at the same time; read it and retry") from None


async def create_connection(
    uow: UnitOfWork,
    actor: Principal,
    box: SecretBox,
    *,
    name: str,
    connector: str,
    connector_version: int | None,
    settings: dict[str, Any],
    secrets: Mapping[str, str | None],
) -> Connection:
    actor.require(Role.ADMIN, "creating a connection")
    await uow.begin_write()
    manifest, version = await _pinned(uow, connector, connector_version)
    _check_settings(manifest, settings)
    status, reason = _initial_status(manifest)
    connection = uow.connections.add(
        Connection(
            name=name,
            connector=connector,
            connector_version=version,
            settings=settings,
            secrets_sealed=_seal_secrets(box, _merged_secrets(manifest, {}, secrets)),
            status=status,
            status_reason=reason,
        )
    )
    await _commit(uow)
    return connection


async def replace_connection(
    uow: UnitOfWork,
    actor: Principal,
    box: SecretBox,
    connection_id: uuid.UUID,
    *,
    name: str,
    connector: str | None,
    connector_version: int | None,
    settings: dict[str, Any],
    secrets: Mapping[str, str | None],
) -> Connection:
    """New name, settings and pinned version; ``secrets`` sets or clears the fields it
    names and keeps the others. A connection's connector never changes."""
    actor.require(Role.ADMIN, "changing a connection")
    await uow.begin_write()
    # Locked: a token renewal of this connection finishes before the change, or waits for it.
    connection = await uow.connections.locked(connection_id)
    if connection is None:
        raise NotFound(f"connection {connection_id} not found")
    if connector is not None and connector != connection.connector:
        raise InvalidInput(
            f"a connection's connector cannot change (it is {connection.connector!r}); "
            "create a new connection",
            field="connector",
        )
    manifest, version = await _pinned(
        uow, connection.connector, connector_version or _kept_version(connection)
    )
    _check_settings(manifest, settings)
    kept = open_secrets(box, connection.secrets_sealed)
    connection.name, connection.settings, connection.connector_version = name, settings, version
    connection.secrets_sealed = _seal_secrets(box, _merged_secrets(manifest, kept, secrets))
    if isinstance(manifest.auth, OAuth2ClientCredentials):
        # Another client id or secret may get another token: the next call fetches one.
        connection.token_sealed, connection.token_expires_at = None, None
    await _commit(uow)
    return connection


def _kept_version(connection: Connection) -> int | None:
    """A built-in connection follows the shipped version; a custom one keeps its pin."""
    return None if builtin(connection.connector) else connection.connector_version


async def delete_connection(uow: UnitOfWork, actor: Principal, connection_id: uuid.UUID) -> None:
    actor.require(Role.ADMIN, "deleting a connection")
    await uow.begin_write()
    connection = await uow.connections.locked(connection_id)
    if connection is None:
        raise NotFound(f"connection {connection_id} not found")
    users = await uow.connections.workflows_using(connection.id)
    if users:
        codes = ", ".join(workflow.code for workflow in users)
        raise Conflict(
            f"the connection is used by the workflows {codes}; change or delete them first",
            workflows=[
                {"id": str(workflow.id), "code": workflow.code, "name": workflow.name}
                for workflow in users
            ],
        )
    await uow.connections.delete(connection)
    await uow.commit()


# --- OAuth2 authorization code ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorizationStarted:
    authorize_url: str
    state: str
    code_challenge: str | None
    redirect_uri: str
    expires_at: datetime


def _context(connection: Connection, secrets: Mapping[str, str]) -> dict[str, Any]:
    """What a connection's templates see, as ``ConnectorClient.context`` gives it."""
    return {"connection": dict(connection.settings), "secrets": dict(secrets)}


def _code_flow(manifest: ConnectorManifest) -> OAuth2Code:
    if not isinstance(manifest.auth, OAuth2Code):
        raise Conflict(
            f"connector {manifest.id!r} does not authorize through OAuth2 (its auth is "
            f"{manifest.auth.type}); set its secrets instead"
        )
    return manifest.auth


async def start_authorization(
    uow: UnitOfWork,
    actor: Principal,
    box: SecretBox,
    connection_id: uuid.UUID,
    *,
    redirect_uri: str,
) -> AuthorizationStarted:
    """The provider's authorize URL for an admin's browser, with a state good for one
    callback within ten minutes."""
    actor.require(Role.ADMIN, "authorizing a connection")
    await uow.begin_write()
    connection = await uow.connections.get(connection_id)
    manifest = await manifest_for(uow, connection.connector, connection.connector_version)
    scheme = _code_flow(manifest)
    context = _context(connection, open_secrets(box, connection.secrets_sealed))
    state, pkce = new_state(), Pkce.new() if scheme.pkce else None
    url = authorize_url(
        scheme,
        context,
        redirect_uri=redirect_uri,
        state=state,
        challenge=pkce.challenge if pkce else None,
    )
    now = utcnow()
    # Expired states of this connection go; for an hour they still answer "expired".
    await uow.authorizations.prune(connection.id, expired_before=now - timedelta(hours=1))
    expires_at = now + AUTHORIZATION_LIFETIME
    uow.authorizations.add(
        Authorization(
            connection_id=connection.id,
            state_hash=state_hash(state),
            verifier_sealed=box.seal(pkce.verifier) if pkce else None,
            redirect_uri=redirect_uri,
            expires_at=expires_at,
        )
    )
    await uow.commit()
    return AuthorizationStarted(
        url, state, pkce.challenge if pkce else None, redirect_uri, expires_at
    )


OAUTH_CALLBACK_PATH = "/api/v1/oauth/callback"
"""Where the provider sends the browser back (``GET``; the API's ``oauth_router``)."""
PAGE_FLOW_COOKIE = "casedesk_oauth_page"
"""Set, for the callback's path only, when an admin's page starts an authorization: the
callback then ends on the connection's page instead of answering JSON."""


def page_flow_mark(connection_id: uuid.UUID, state: str) -> str:
    """The cookie's value: the connection and the hash of the state the page handed out."""
    return f"{connection_id}.{state_hash(state)}"


def page_flow_connection(mark: str | None, state: str | None) -> uuid.UUID | None:
    """The connection whose page started the authorization of ``state`` in this browser,
    when the browser's mark is that state's; None for a flow started over the API."""
    if not mark or not state:
        return None
    named, _, hashed = mark.partition(".")
    if not hmac.compare_digest(hashed.encode(), state_hash(state).encode()):
        return None
    try:
        return uuid.UUID(named)
    except ValueError:
        return None


async def _spend_state(database: Database, state: str) -> Authorization:
    """The authorization the state names, now used; refused when it is unknown, used or
    expired."""
    async with UnitOfWork(database) as uow:
        found = await uow.authorizations.by_state_hash_any_tenant(state_hash(state))
    if found is None:
        raise AuthorizationStateInvalid(
            "the state matches no authorization started here; start again with "
            "POST /api/v1/connections/{id}/authorize"
        )
    if found.used_at is not None:
        raise AuthorizationStateInvalid(
            "this authorization was used already; start again with "
            f"POST /api/v1/connections/{found.connection_id}/authorize"
        )
    if found.expires_at <= utcnow():
        raise AuthorizationStateInvalid(
            f"this authorization expired at {found.expires_at.isoformat()}; start again "
            f"with POST /api/v1/connections/{found.connection_id}/authorize"
        )
    async with UnitOfWork(database, found.tenant_id) as uow:
        await uow.begin_write()
        spent = await uow.authorizations.use(found.id)
        await uow.commit()
    if not spent:
        raise AuthorizationStateInvalid("this authorization was used already, just now")
    return found


async def complete_authorization(
    database: Database,
    hub: Hub,
    box: SecretBox,
    *,
    state: str,
    code: str | None,
    error: str | None = None,
    error_description: str | None = None,
) -> Connection:
    """The provider's redirect back: the state spent once, the code exchanged for tokens,
    kept sealed; the connection is active again. The caller has no API key: the state is
    the proof that an admin of the connection's tenant started this."""
    authorization = await _spend_state(database, state)
    if error is not None:
        said = f": {error_description[:300]}" if error_description else ""
        raise AuthorizationRefused(f"the provider did not grant access ({error[:100]}{said})")
    if not code:
        raise AuthorizationRefused("the provider's callback carries no code")
    tenant_id = authorization.tenant_id
    async with UnitOfWork(database, tenant_id) as uow:
        connection = await uow.connections.get(authorization.connection_id)
        manifest = await manifest_for(uow, connection.connector, connection.connector_version)
    secrets = open_secrets(box, connection.secrets_sealed)
    endpoint = TokenEndpoint(
        hub,
        _code_flow(manifest),
        _context(connection, secrets),
        tenant_id=tenant_id,
        connector=manifest.id,
        connection_id=connection.id,
    )
    verifier = None
    if authorization.verifier_sealed is not None:
        verifier = box.open(authorization.verifier_sealed)
    try:
        tokens = await endpoint.exchange_code(
            code, redirect_uri=authorization.redirect_uri, verifier=verifier
        )
    except TokenRefused as refused:
        detail = f"the provider did not take the code: {refused.detail}"
        raise AuthorizationRefused(detail) from None
    async with UnitOfWork(database, tenant_id) as uow:
        await uow.begin_write()
        locked = await uow.connections.locked(connection.id)
        if locked is None:
            raise NotFound(f"connection {connection.id} was deleted meanwhile")
        _keep_tokens(box, locked, tokens)
        locked.status, locked.status_reason = ACTIVE, None
        await _commit(uow)
    return locked


def _keep_tokens(box: SecretBox, connection: Connection, tokens: Tokens) -> None:
    connection.token_sealed = box.seal(tokens.sealable())
    connection.token_expires_at = tokens.expires_at


def _stored_tokens(box: SecretBox, connection: Connection) -> Tokens | None:
    if connection.token_sealed is None:
        return None
    return Tokens.opened(box.open(connection.token_sealed), connection.token_expires_at)


# --- access tokens -------------------------------------------------------------------------


class AccessTokens:
    """The access token of one OAuth2 connection, renewed shortly before it expires.

    A renewal holds the connection's row (``SELECT … FOR UPDATE``; SQLite's write lock), so
    of two workers that find the token expiring, one renews it and the other, once the row
    is free, finds the new token and uses it: a rotating refresh token is spent once. A
    refresh answered ``invalid_grant`` marks the connection ``needs_reauth`` with the reason
    and emits ``connection.needs_reauth``; from then on every call fails at once with
    ``NeedsReauthorization``, without asking the provider, until an admin authorizes again.
    Any other failure leaves the connection as it was, for a later call to try again.

    It works in units of work of its own and never commits the caller's. On SQLite a
    renewal needs the write lock, so a caller must not hold a write transaction while it
    sends (it would wait for itself until the busy timeout).
    """

    def __init__(
        self,
        database: Database,
        hub: Hub,
        box: SecretBox,
        manifest: ConnectorManifest,
        account: Account,
        scheme: OAuthScheme,
    ) -> None:
        assert account.connection_id is not None
        self._database, self._hub, self._box = database, hub, box
        self._manifest, self._account, self._scheme = manifest, account, scheme
        self._connection_id = account.connection_id
        self._tokens: Tokens | None = None

    async def __call__(self) -> str:
        if self._tokens is not None and self._tokens.usable():
            return self._tokens.access_token
        async with UnitOfWork(self._database, self._account.tenant_id) as uow:
            connection = await uow.connections.get(self._connection_id)
        _refuse_if_needs_reauth(connection)
        stored = _stored_tokens(self._box, connection)
        if stored is not None and stored.usable():
            self._tokens = stored
            return stored.access_token
        return await self._renew()

    async def _renew(self) -> str:
        async with UnitOfWork(self._database, self._account.tenant_id) as uow:
            await uow.begin_write()
            connection = await uow.connections.locked(self._connection_id)
            if connection is None:
                raise NotFound(f"connection {self._connection_id} not found")
            _refuse_if_needs_reauth(connection)
            stored = _stored_tokens(self._box, connection)
            if stored is not None and stored.usable():  # renewed while this one waited
                self._tokens = stored
                return stored.access_token
            fresh = await self._fresh(uow, connection, stored)
            _keep_tokens(self._box, connection, fresh)
            await _commit(uow)
        self._tokens = fresh
        return fresh.access_token

    async def _fresh(
        self, uow: UnitOfWork, connection: Connection, stored: Tokens | None
    ) -> Tokens:
        endpoint = TokenEndpoint(
            self._hub,
            self._scheme,
            {"connection": dict(self._account.settings), "secrets": dict(self._account.secrets)},
            tenant_id=self._account.tenant_id,
            connector=self._manifest.id,
            connection_id=self._connection_id,
        )
        if isinstance(self._scheme, OAuth2ClientCredentials):
            return await endpoint.client_credentials()
        if stored is None or stored.refresh_token is None:
            reason = "the access token expired and the provider gave no refresh token"
            raise await _needs_reauth(uow, connection, reason)
        try:
            refreshed = await endpoint.refresh(stored.refresh_token)
        except InvalidGrant as refused:
            said = f": {refused.description}" if refused.description else ""
            reason = f"the provider refused the refresh token ({refused.error}{said})"
            raise await _needs_reauth(uow, connection, reason) from None
        return stored.after_refresh(refreshed)


def _refuse_if_needs_reauth(connection: Connection) -> None:
    if connection.status == NEEDS_REAUTH:
        raise _needs_authorization(connection)


def _needs_authorization(connection: Connection) -> NeedsReauthorization:
    return NeedsReauthorization(
        f"connection {connection.id} needs authorization: {connection.status_reason}; "
        f"an admin must POST /api/v1/connections/{connection.id}/authorize",
        connection_id=str(connection.id),
    )


def connection_facts(connection: Connection) -> dict[str, Any]:
    return {
        "id": str(connection.id),
        "name": connection.name,
        "connector": connection.connector,
        "connector_version": connection.connector_version,
        "status": connection.status,
    }


async def _needs_reauth(
    uow: UnitOfWork, connection: Connection, reason: str
) -> NeedsReauthorization:
    """Mark the connection and emit the event with it, committed; the refusal to raise."""
    connection.status, connection.status_reason = NEEDS_REAUTH, reason
    connection.token_sealed, connection.token_expires_at = None, None
    event = new_event(
        connection.tenant_id,
        NEEDS_REAUTH_EVENT,
        Subject(CONNECTION, connection.id, connection_facts(connection)),
        {"actor": {"type": "system", "id": None}, "reason": reason},
        trace_or_new(),
    )
    uow.add_events([event])
    await _commit(uow)
    return _needs_authorization(connection)


# --- the client -----------------------------------------------------------------------------


async def open_client(
    uow: UnitOfWork,
    hub: Hub,
    box: SecretBox,
    *,
    tenant_id: uuid.UUID,
    connector: str,
    connection_id: uuid.UUID | None,
    connection: Connection | None = None,
) -> ConnectorClient:
    """The client of a connection, or of a connector used without one (a plain webhook);
    ``connection`` is the connection's row when the caller has just read it."""
    if connection_id is None:
        manifest = await manifest_for(uow, connector, None)
        if isinstance(manifest.auth, OAuth2Code | OAuth2ClientCredentials):
            raise InvalidInput(
                f"connector {connector!r} authorizes through OAuth2: name a connection",
                field="connection_id",
            )
        return ConnectorClient(hub, manifest, Account(tenant_id, None, {}))
    if connection is None or connection.id != connection_id:
        connection = await uow.connections.find(connection_id)
    if connection is None:
        raise NotFound(f"connection {connection_id} not found")
    manifest = await manifest_for(uow, connection.connector, connection.connector_version)
    account = Account(
        tenant_id,
        connection.id,
        dict(connection.settings),
        open_secrets(box, connection.secrets_sealed),
    )
    scheme = manifest.auth
    if not isinstance(scheme, OAuth2Code | OAuth2ClientCredentials):
        return ConnectorClient(hub, manifest, account)
    tokens = AccessTokens(uow.database, hub, box, manifest, account, scheme)
    return ConnectorClient(hub, manifest, account, access_token=tokens)


# --- the test request ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    ok: bool
    status: int | None
    reason: str
    trace_id: str


async def check_connection(
    uow: UnitOfWork, actor: Principal, hub: Hub, box: SecretBox, connection_id: uuid.UUID
) -> ConnectionCheck:
    """Send the manifest's test request: whether the connection works, and if not, why."""
    actor.require(Role.ADMIN, "testing a connection")
    connection = await uow.connections.get(connection_id)
    manifest = await manifest_for(uow, connection.connector, connection.connector_version)
    template = manifest.connection.test
    if template is None:
        raise Conflict(f"connector {manifest.id!r} has no test request (connection.test)")
    trace = trace_or_new()
    try:
        client = await open_client(
            uow,
            hub,
            box,
            tenant_id=connection.tenant_id,
            connector=manifest.id,
            connection_id=connection.id,
        )
        response = await client.send(
            template, action="connection.test", traceparent=trace.traceparent
        )
    except CasedeskError as failed:  # needs authorization, unreachable, not sendable, ...
        return ConnectionCheck(False, None, failed.detail, trace.trace_id)
    except ExpressionError as failed:
        reason = f"the test request does not render: {failed}"
        return ConnectionCheck(False, None, reason, trace.trace_id)
    except SecretUnreadable as failed:
        return ConnectionCheck(False, None, str(failed), trace.trace_id)
    reason = f"{response.status_code} {response.reason_phrase}".strip()
    return ConnectionCheck(response.is_success, response.status_code, reason, trace.trace_id)

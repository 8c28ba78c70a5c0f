"""OAuth 2.0 for connections, as RFC 6749 and RFC 7636 (PKCE) put it on the wire.

- ``authorize_url``: where an admin's browser goes to grant access, with a random ``state``
  and, for PKCE, the S256 ``code_challenge`` of a verifier that only casedesk keeps.
- ``TokenEndpoint``: the provider's token endpoint, called through the hub (so guarded and
  traced with the connection's id, with codes, verifiers, secrets and tokens redacted): a
  code exchanged (§4.1.3), a refresh token spent (§6), a client-credentials grant (§4.4).
  An ``invalid_grant`` answer is ``InvalidGrant``: the grant is gone for good and only a
  new authorization helps; any other refusal is ``TokenRefused``; an answer that is no
  token response at all is ``TokenEndpointFailed``.

Nothing here keeps state; ``activities.connections`` stores the tokens sealed and decides
when to renew them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
import orjson

from casedesk.integrations.errors import HubError
from casedesk.integrations.expressions import ExpressionError, render
from casedesk.integrations.hub import Hub
from casedesk.integrations.manifests.auth import OAuth2ClientCredentials, OAuth2Code
from casedesk.integrations.retry import RetryPolicy
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import CasedeskError, InvalidInput

RENEW_BEFORE = timedelta(seconds=60)
"""An access token this close to its expiry is renewed before it is used."""
AUTHORIZATION_LIFETIME = timedelta(minutes=10)
"""How long an admin has to come back from the provider's consent page."""
TOKEN_SECRET_FIELDS = ("code", "code_verifier", "client_secret", "refresh_token", "access_token")
"""Fields of token requests and answers that never reach a trace."""
_DESCRIPTION_CHARS = 300
BEARER = "Bearer"

OAuthScheme = OAuth2Code | OAuth2ClientCredentials


class TokenRefused(HubError):
    """The token endpoint refused the request with an OAuth error (RFC 6749 §5.2)."""

    status = 502
    title = "OAuth token request refused"
    slug = "oauth-token-refused"

    def __init__(self, error: str, description: str | None, status: int) -> None:
        said = f": {description}" if description else ""
        super().__init__(
            f"the token endpoint refused the request ({status} {error}{said})",
            error=error,
            upstream_status=status,
        )
        self.error = error
        self.description = description


class InvalidGrant(TokenRefused):
    """The code or refresh token is invalid, expired, revoked or already spent."""

    slug = "oauth-invalid-grant"


class TokenEndpointFailed(HubError):
    """The token endpoint gave no token response: a server error, or not a token at all."""

    title = "OAuth token endpoint failed"
    slug = "oauth-token-endpoint-failed"


class NeedsReauthorization(CasedeskError):
    """The connection's grant is gone; nothing is called until an admin authorizes again."""

    status = 409
    title = "Connection needs authorization"
    slug = "connection-needs-reauthorization"


@dataclass(frozen=True, slots=True)
class Pkce:
    """A PKCE verifier and its S256 challenge (RFC 7636 §4.1, §4.2)."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        # 64 random bytes: 86 characters of [A-Za-z0-9_-], within the 43..128 allowed.
        verifier = secrets.token_urlsafe(64)
        return cls(verifier, challenge_of(verifier))


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    return secrets.token_urlsafe(32)


def state_hash(state: str) -> str:
    """How an authorization is found again from the ``state`` the provider hands back."""
    return hashlib.sha256(state.encode()).hexdigest()


def _rendered(template: str, context: Mapping[str, Any], what: str) -> str:
    """A template of the auth scheme, rendered; one that cannot be (a setting it names is
    missing) is the connection's problem, a 422."""
    try:
        return str(render(template, context) or "")
    except ExpressionError as exc:
        detail = f"the connector's {what} does not render: {exc}"
        raise InvalidInput(detail, field="settings") from None


def client_id_of(scheme: OAuthScheme, context: Mapping[str, Any]) -> str:
    client_id = _rendered(scheme.client_id, context, "auth.client_id")
    if not client_id:
        raise InvalidInput(
            "the connection has no OAuth client id: set the setting the connector's "
            f"auth.client_id names ({scheme.client_id})",
            field="settings",
        )
    return client_id


def authorize_url(
    scheme: OAuth2Code,
    context: Mapping[str, Any],
    *,
    redirect_uri: str,
    state: str,
    challenge: str | None,
) -> str:
    """The provider's authorize URL for this connection (RFC 6749 §4.1.1, RFC 7636 §4.3)."""
    params = {
        "response_type": "code",
        "client_id": client_id_of(scheme, context),
        "redirect_uri": redirect_uri,
        "state": state,
    }
    if scheme.scopes:
        params["scope"] = scheme.scope_separator.join(scheme.scopes)
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    extra = {
        name: _rendered(text, context, f"auth.authorize_params.{name}")
        for name, text in scheme.authorize_params.items()
    }
    base = httpx.URL(_rendered(scheme.authorize_url, context, "auth.authorize_url"))
    return str(base.copy_merge_params(extra | params))


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    token_type: str = BEARER
    refresh_token: str | None = None
    scope: str | None = None
    expires_at: datetime | None = None
    """None: the provider gave no lifetime, so the token is used until it is refused."""

    def usable(self, now: datetime | None = None) -> bool:
        """Good for a call now: not expired, nor about to be."""
        if self.expires_at is None:
            return True
        return (now or utcnow()) < self.expires_at - RENEW_BEFORE

    def sealable(self) -> str:
        """The tokens as the JSON text that is sealed (the expiry has a column of its own)."""
        fields = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }
        return orjson.dumps(fields).decode()

    @classmethod
    def opened(cls, text: str, expires_at: datetime | None) -> Tokens:
        fields = orjson.loads(text)
        return cls(
            access_token=fields["access_token"],
            token_type=fields.get("token_type") or BEARER,
            refresh_token=fields.get("refresh_token"),
            scope=fields.get("scope"),
            expires_at=expires_at,
        )

    def after_refresh(self, fresh: Tokens) -> Tokens:
        """The tokens after a refresh: a provider that does not rotate refresh tokens sends
        none back, and the one spent stays good (RFC 6749 §6)."""
        if fresh.refresh_token is not None:
            return fresh
        return Tokens(
            fresh.access_token, fresh.token_type, self.refresh_token, fresh.scope, fresh.expires_at
        )


class TokenEndpoint:
    """One connection's calls to its provider's token endpoint."""

    def __init__(
        self,
        hub: Hub,
        scheme: OAuthScheme,
        context: Mapping[str, Any],
        *,
        tenant_id: uuid.UUID,
        connector: str,
        connection_id: uuid.UUID | None,
    ) -> None:
        self._hub = hub
        self._scheme = scheme
        self._context = context
        self._tenant_id = tenant_id
        self._connector = connector
        self._connection_id = connection_id

    async def exchange_code(self, code: str, *, redirect_uri: str, verifier: str | None) -> Tokens:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if verifier is not None:
            form["code_verifier"] = verifier
        return await self._grant(form, action="oauth.authorization_code")

    async def refresh(self, refresh_token: str) -> Tokens:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._grant(form, action="oauth.refresh_token")

    async def client_credentials(self) -> Tokens:
        scheme = self._scheme
        assert isinstance(scheme, OAuth2ClientCredentials)
        form = {"grant_type": "client_credentials"}
        if scheme.scopes:
            form["scope"] = scheme.scope_separator.join(scheme.scopes)
        for name, text in scheme.token_params.items():
            form[name] = _rendered(text, self._context, f"auth.token_params.{name}")
        return await self._grant(form, action="oauth.client_credentials")

    async def _grant(self, form: dict[str, str], *, action: str) -> Tokens:
        client_id = client_id_of(self._scheme, self._context)
        client_secret = str(self._context.get("secrets", {}).get("client_secret") or "")
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        if self._scheme.client_auth == "basic" and client_secret:
            # RFC 6749 §2.3.1: each part form-encoded before the two are joined.
            pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            form["client_id"] = client_id
            if client_secret:
                form["client_secret"] = client_secret
        connection = self._hub.connection(
            tenant_id=self._tenant_id,
            connector=self._connector,
            connection_id=self._connection_id,
            secret_fields=TOKEN_SECRET_FIELDS,
            retry=_token_retry(self._hub.default_retry),
        )
        sent_at = utcnow()
        response = await connection.request(
            "POST",
            _rendered(self._scheme.token_url, self._context, "auth.token_url"),
            headers=headers,
            content=urlencode(form),
            action=action,
        )
        return token_response(response, sent_at)


def _token_retry(default: RetryPolicy) -> RetryPolicy:
    """A token request is a POST, tried again when it is answered 429 or 503 (the provider
    says it did nothing) and when its answer was lost: a code or refresh token spent by a
    lost answer is gone whatever is done, and the next attempt says so (``invalid_grant``)
    instead of leaving the connection to find out later."""
    return replace(default, retry_statuses=frozenset({429, 503}), retry_unsafe=True)


def token_response(response: httpx.Response, sent_at: datetime) -> Tokens:
    """The tokens of a token endpoint's answer (RFC 6749 §5.1), or why there are none."""
    try:
        document = response.json()
    except ValueError:
        document = None
    fields: dict[str, Any] = document if isinstance(document, dict) else {}
    access_token = fields.get("access_token")
    if response.is_success and isinstance(access_token, str) and access_token:
        return _tokens(fields, access_token, sent_at)
    error = fields.get("error")
    if isinstance(error, str) and error:
        description = fields.get("error_description")
        said = str(description)[:_DESCRIPTION_CHARS] if description else None
        refused = InvalidGrant if error == "invalid_grant" else TokenRefused
        raise refused(error[:100], said, response.status_code)
    if response.is_success:
        raise TokenEndpointFailed("the token endpoint answered without an access_token")
    raise TokenEndpointFailed(f"the token endpoint answered {response.status_code}")


def _tokens(fields: dict[str, Any], access_token: str, sent_at: datetime) -> Tokens:
    token_type = str(fields.get("token_type") or BEARER)
    if token_type.lower() != "bearer":
        raise TokenEndpointFailed(f"the token endpoint gave a {token_type!r} token; only Bearer")
    refresh_token = fields.get("refresh_token")
    scope = fields.get("scope")
    return Tokens(
        access_token=access_token,
        token_type=BEARER,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        scope=scope if isinstance(scope, str) else None,
        expires_at=_expiry(fields.get("expires_in"), sent_at),
    )


def _expiry(expires_in: Any, sent_at: datetime) -> datetime | None:
    """When the token expires, counted from when it was asked for (never later than it
    does); some providers send the seconds as a string."""
    if isinstance(expires_in, bool):
        return None
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        return None
    if not 0 <= seconds <= 10 * 365 * 86_400:
        return None
    return sent_at + timedelta(seconds=seconds)

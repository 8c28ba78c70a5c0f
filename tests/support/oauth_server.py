"""A small OAuth 2.0 authorization server for tests, speaking RFC 6749 and RFC 7636 on the wire.

It runs on ``LocalHTTPServer`` and keeps its grants in memory:

- ``GET /oauth/authorize``: an authorization request (RFC 6749 §4.1.1) from a registered
  client to a registered redirect URI is approved at once (the test is the user) and
  answered with a 302 to the redirect URI carrying ``code`` and ``state`` (§4.1.2); with
  ``deny`` set it carries ``error=access_denied`` instead (§4.1.2.1). A bad client or
  redirect URI is a 400 and never redirected.
- ``POST /oauth/token``: ``authorization_code`` (§4.1.3) with the PKCE check (RFC 7636 §4.6),
  ``refresh_token`` (§6) with rotation: every refresh token is good once, and one spent
  again is ``invalid_grant``; ``client_credentials`` (§4.4). Clients authenticate with HTTP
  Basic or in the body (§2.3.1). Errors are JSON as §5.2 says, with ``Cache-Control:
  no-store``.
- ``GET /api/me``: a protected resource; a valid bearer token gets 200, anything else 401
  with ``WWW-Authenticate`` (RFC 6750 §3).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

import httpx

from tests.support.http_server import LocalHTTPServer, Received, Reply, local_http_server

CLIENT_ID = "casedesk-test-client"
CLIENT_SECRET = "client-secret-7d3f9a1c2b"
_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str | None
    scope: str
    used: bool = False


@dataclass
class _Refresh:
    client_id: str
    scope: str
    spent: bool = False


@dataclass
class OAuthServer:
    http: LocalHTTPServer
    redirect_uris: set[str] = field(default_factory=set)
    access_lifetime: int = 3600
    """``expires_in`` of the access tokens it issues from now on."""
    rotate_refresh_tokens: bool = True
    token_delay: float = 0.0
    """Seconds the token endpoint waits before it answers."""
    fail_token_requests_with: int | None = None
    """Answer every token request with this status (a server error) while set."""
    deny: bool = False
    grant_types: list[str] = field(default_factory=list)
    """The grant type of each token request that reached the server, in order."""
    _codes: dict[str, _Code] = field(default_factory=dict)
    _refresh: dict[str, _Refresh] = field(default_factory=dict)
    _access: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http.handle("/oauth/authorize", self._authorize)
        self.http.handle("/oauth/token", self._token)
        self.http.handle("/api/me", self._me)

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def issued_access_tokens(self) -> list[str]:
        return list(self._access)

    @property
    def issued_refresh_tokens(self) -> list[str]:
        return list(self._refresh)

    def revoke_refresh_tokens(self) -> None:
        for grant in self._refresh.values():
            grant.spent = True

    async def consent(self, authorize_url: str) -> dict[str, str]:
        """Follow an authorize URL as a browser would, up to the redirect back: its query."""
        async with httpx.AsyncClient() as browser:
            answer = await browser.get(authorize_url, follow_redirects=False)
        assert answer.status_code == 302, answer.text
        return dict(parse_qsl(urlsplit(answer.headers["location"]).query))

    # --- endpoints -----------------------------------------------------------------------

    async def _authorize(self, request: Received) -> Reply:
        query = dict(parse_qsl(request.query))
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != CLIENT_ID or redirect_uri not in self.redirect_uris:
            return Reply(400, b"unknown client or redirect_uri")
        back: dict[str, str] = {"state": query.get("state", "")}
        if query.get("response_type") != "code":
            back["error"] = "unsupported_response_type"
        elif self.deny:
            back |= {"error": "access_denied", "error_description": "the user said no"}
        else:
            code = secrets.token_urlsafe(16)
            self._codes[code] = _Code(
                CLIENT_ID,
                redirect_uri,
                query.get("code_challenge"),
                query.get("code_challenge_method"),
                query.get("scope", ""),
            )
            back["code"] = code
        location = f"{redirect_uri}?{urlencode(back)}"
        return Reply(302, b"", {"location": location})

    async def _token(self, request: Received) -> Reply:
        form = dict(parse_qsl(request.body.decode()))
        self.grant_types.append(form.get("grant_type", ""))
        await asyncio.sleep(self.token_delay)
        if self.fail_token_requests_with is not None:
            return Reply(self.fail_token_requests_with, b"unavailable", {"retry-after": "0"})
        if request.headers.get("content-type", "").split(";")[0] != (
            "application/x-www-form-urlencoded"
        ):
            return _error("invalid_request", "send the parameters form-encoded")
        client_id, refused = _client(request, form)
        if refused is not None:
            return refused
        grants = {
            "authorization_code": self._code_grant,
            "refresh_token": self._refresh_grant,
            "client_credentials": self._client_grant,
        }
        grant = grants.get(form.get("grant_type", ""))
        if grant is None:
            return _error("unsupported_grant_type", "no such grant type here")
        return grant(client_id, form)

    def _code_grant(self, client_id: str, form: dict[str, str]) -> Reply:
        code = self._codes.get(form.get("code", ""))
        if code is None or code.used or code.client_id != client_id:
            return _error("invalid_grant", "unknown or used code")
        code.used = True  # a code is good once (§4.1.2)
        if form.get("redirect_uri") != code.redirect_uri:
            return _error("invalid_grant", "redirect_uri differs from the authorization's")
        if code.challenge is not None:
            verifier = form.get("code_verifier", "")
            if code.method != "S256" or _s256(verifier) != code.challenge:
                return _error("invalid_grant", "the code_verifier does not match")
        return self._issue(client_id, code.scope, refresh=True)

    def _refresh_grant(self, client_id: str, form: dict[str, str]) -> Reply:
        token = form.get("refresh_token", "")
        grant = self._refresh.get(token)
        if grant is None or grant.spent or grant.client_id != client_id:
            return _error("invalid_grant", "the refresh token is invalid or was used")
        if self.rotate_refresh_tokens:
            grant.spent = True
            return self._issue(client_id, grant.scope, refresh=True)
        return self._issue(client_id, grant.scope, refresh=False)

    def _client_grant(self, client_id: str, form: dict[str, str]) -> Reply:
        return self._issue(client_id, form.get("scope", ""), refresh=False)

    def _issue(self, client_id: str, scope: str, *, refresh: bool) -> Reply:
        access = "at-" + secrets.token_urlsafe(24)
        self._access[access] = time.monotonic() + self.access_lifetime
        answer: dict[str, object] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_lifetime,
            "scope": scope,
        }
        if refresh:
            token = "rt-" + secrets.token_urlsafe(24)
            self._refresh[token] = _Refresh(client_id, scope)
            answer["refresh_token"] = token
        return Reply.json(answer, headers=_NO_STORE)

    async def _me(self, request: Received) -> Reply:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expires = self._access.get(token)
        if scheme.lower() != "bearer" or expires is None or expires <= time.monotonic():
            challenge = 'Bearer error="invalid_token"'
            return Reply.json({"error": "invalid_token"}, 401, {"www-authenticate": challenge})
        return Reply.json({"ok": True})


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _error(error: str, description: str, status: int = 400, **headers: str) -> Reply:
    body = {"error": error, "error_description": description}
    return Reply.json(body, status, _NO_STORE | headers)


def _client(request: Received, form: dict[str, str]) -> tuple[str, Reply | None]:
    """The authenticated client (§2.3.1): HTTP Basic or the body, never both."""
    header = request.headers.get("authorization", "")
    in_body = "client_secret" in form
    if header.lower().startswith("basic "):
        if in_body:
            return "", _error("invalid_request", "more than one client authentication")
        decoded = base64.b64decode(header[6:]).decode()
        client_id, _, secret = decoded.partition(":")
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        challenge = {"www-authenticate": 'Basic realm="test"'}
        if client_id != CLIENT_ID or secret != CLIENT_SECRET:
            return "", _error("invalid_client", "bad client credentials", 401, **challenge)
        return client_id, None
    if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
        return "", _error("invalid_client", "bad client credentials", 401)
    return CLIENT_ID, None


@asynccontextmanager
async def oauth_server(*redirect_uris: str) -> AsyncIterator[OAuthServer]:
    async with local_http_server() as http:
        yield OAuthServer(http, redirect_uris=set(redirect_uris))

"""Calling a connector's requests for one connection: templates rendered, auth applied,
every call through the hub, so it is guarded, retried, rate-limited and traced.

``ConnectorClient`` is what triggers, enrichers and workflow steps use. Its templates see
``connection`` (the settings), ``secrets`` (the secret fields) and whatever the caller adds
(``cursor``, ``settings``, ``id``, ``input``, …). A header or query parameter that renders
empty is left out, so one manifest serves connections with and without an optional token.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from casedesk.integrations.expressions import render, render_tree
from casedesk.integrations.hub import Connection, Hub
from casedesk.integrations.manifests import ConnectorManifest
from casedesk.integrations.manifests.auth import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    OAuth2ClientCredentials,
    OAuth2Code,
)
from casedesk.integrations.manifests.common import RequestTemplate
from casedesk.kit.errors import InvalidInput

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})

AccessToken = Callable[[], Awaitable[str]]
"""Gives a valid OAuth2 access token for the connection (refreshing it when it must)."""


@dataclass(frozen=True, slots=True)
class Account:
    """What a connection is, as the runtime needs it: its settings and its opened secrets."""

    tenant_id: uuid.UUID
    connection_id: uuid.UUID | None
    settings: Mapping[str, Any]
    secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderedRequest:
    method: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    json: Any
    content: str | None


def render_request(template: RequestTemplate, context: Mapping[str, Any]) -> RenderedRequest:
    """The request with every template rendered; empty headers and parameters left out."""
    headers = _present({name: render(text, context) for name, text in template.headers.items()})
    params = _present({name: render(text, context) for name, text in template.query.items()})
    content = None
    if template.form is not None:
        form = _present({name: render(text, context) for name, text in template.form.items()})
        content = urlencode(form)
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    body = None if template.json_body is None else render_tree(template.json_body, context)
    return RenderedRequest(
        method=template.method,
        url=str(render(template.path, context)),
        params=params,
        headers=headers,
        json=body,
        content=content,
    )


def _present(values: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in values.items() if value not in (None, "")}


_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
"""What a header value may hold: visible ASCII, spaces and tabs (RFC 9110 §5.5, without the
obsolete octets above 0x7f, which httpx does not send)."""


class HeaderNotSendable(InvalidInput):
    """A header of a request, rendered or carrying a credential, that cannot go on the wire."""


def _sendable_headers(headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        if not _HEADER_VALUE.fullmatch(value):
            raise HeaderNotSendable(
                f"the request's {name} header holds characters a header cannot carry "
                "(only visible ASCII): check the connection's settings and secrets",
                field=name,
            )


class _QueryKey(httpx.Auth):
    """An API key carried in the query string."""

    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params({self.name: self.value})
        yield request


class ConnectorClient:
    """One connection's way to its service."""

    def __init__(
        self,
        hub: Hub,
        manifest: ConnectorManifest,
        account: Account,
        *,
        access_token: AccessToken | None = None,
        rate_limit: str | None = None,
    ) -> None:
        self.manifest = manifest
        self.account = account
        self._access_token = access_token
        self._hub = hub
        self._rate_limit = rate_limit

    @property
    def context(self) -> dict[str, Any]:
        """What every template of this connection sees."""
        return {"connection": dict(self.account.settings), "secrets": dict(self.account.secrets)}

    async def send(
        self,
        template: RequestTemplate,
        context: Mapping[str, Any] | None = None,
        *,
        action: str,
        execution_id: str | None = None,
        traceparent: str | None = None,
    ) -> httpx.Response:
        """Render and send one request; any status is returned, as the hub returns it."""
        scope = self.context | dict(context or {})
        request = render_request(template, scope)
        connection = await self._connection(scope)
        _sendable_headers(request.headers)
        return await connection.request(
            request.method,
            request.url,
            headers=request.headers,
            params=request.params,
            json=request.json,
            content=request.content,
            action=action,
            execution_id=execution_id,
            traceparent=traceparent,
        )

    async def download(
        self,
        url: str,
        *,
        max_bytes: int,
        action: str,
        execution_id: str | None = None,
        traceparent: str | None = None,
    ) -> httpx.Response:
        """GET a file: a path under the connector's base URL, or an absolute URL. Reads at
        most ``max_bytes`` (plus one: ``ResponseTooLarge``). Redirects are followed (at most
        ``MAX_REDIRECTS``); the connection's credentials go only to the base URL's host and
        the hosts under its domain (Slack's ``files.slack.com`` for ``slack.com/api``), never
        to a host a redirect or a message names beyond them."""
        scope = self.context
        base = self._base_url(scope)
        target = httpx.URL(url) if base is None else httpx.URL(base).join(_relative(base, url))
        for _ in range(MAX_REDIRECTS + 1):
            trusted = base is not None and _within(target.host, httpx.URL(base).host)
            connection = await self._connection(scope, with_auth=trusted)
            response = await connection.request(
                "GET",
                str(target),
                action=action,
                execution_id=execution_id,
                traceparent=traceparent,
                max_response_bytes=max_bytes,
            )
            location = response.headers.get("location")
            if response.status_code not in REDIRECTS or not location:
                return response
            target = target.join(location)
        return response

    def _base_url(self, scope: Mapping[str, Any]) -> str | None:
        template = self.manifest.base_url
        return (None if template is None else str(render(template, scope))) or None

    async def _connection(self, scope: Mapping[str, Any], *, with_auth: bool = True) -> Connection:
        manifest, account = self.manifest, self.account
        base_url = self._base_url(scope)
        auth = await self._auth() if with_auth else None
        if isinstance(auth, Mapping):
            _sendable_headers(auth)
        return self._hub.connection(
            tenant_id=account.tenant_id,
            connector=manifest.id,
            connection_id=account.connection_id,
            base_url=base_url,
            auth=auth,
            secret_fields=self._secret_fields(),
            secret_paths=manifest.secret_paths,
            rate_limit=self._rate_limit,
        )

    def _secret_fields(self) -> list[str]:
        """Names whose values never reach a trace: the secret fields, and the query parameter
        that carries an API key, whatever it is called (``?k=``)."""
        names = [secret.name for secret in self.manifest.connection.secrets]
        scheme = self.manifest.auth
        if isinstance(scheme, ApiKeyAuth) and scheme.in_ == "query":
            names.append(scheme.name)
        return names

    async def _auth(self) -> httpx.Auth | Mapping[str, str] | None:
        scheme, secrets = self.manifest.auth, self.account.secrets
        if isinstance(scheme, ApiKeyAuth):
            key = secrets.get(scheme.secret_field, "")
            if not key:
                return None
            if scheme.in_ == "query":
                return _QueryKey(scheme.name, key)
            return {scheme.name: scheme.prefix + key}
        if isinstance(scheme, BearerAuth):
            token = secrets.get(scheme.secret_field, "")
            return {"Authorization": f"Bearer {token}"} if token else None
        if isinstance(scheme, BasicAuth):
            username = str(self.account.settings.get(scheme.username, ""))
            return httpx.BasicAuth(username, secrets.get(scheme.secret_field, ""))
        if isinstance(scheme, OAuth2Code | OAuth2ClientCredentials):
            if self._access_token is None:
                raise RuntimeError(f"connector {self.manifest.id} needs an OAuth2 token source")
            return {"Authorization": f"Bearer {await self._access_token()}"}
        return None


def _within(host: str, base_host: str) -> bool:
    """``host`` is the base URL's host or one under its domain."""
    host, base_host = host.lower().rstrip("."), base_host.lower().rstrip(".")
    return host == base_host or host.endswith("." + base_host)


def _relative(base: str, url: str) -> str:
    """A path under the base URL (``/users/me/…`` joins onto ``…/gmail/v1``), or ``url``
    itself when it is absolute."""
    if httpx.URL(url).is_absolute_url:
        return url
    return str(httpx.URL(base).raw_path.rstrip(b"/").decode() + "/" + url.lstrip("/"))

"""OAuth2 connections against a real local authorization server (tests/support/oauth_server):
the authorization code round trip with PKCE, client credentials, refresh under the
connection's lock, and ``invalid_grant`` turning a connection to ``needs_reauth`` once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import pytest
from sqlalchemy import select, update

from casedesk.activities.connections import open_client
from casedesk.bootstrap import Container
from casedesk.integrations.oauth import NeedsReauthorization, TokenEndpointFailed, challenge_of
from casedesk.integrations.runtime import ConnectorClient
from casedesk.kit.clock import utcnow
from casedesk.kit.errors import InvalidInput
from casedesk.store.models import Authorization, Connection, OutboxEvent
from tests.conftest import TenantHandle, Tenants
from tests.support.connections import (
    REDIRECT_URI,
    oauth_connection,
    oauth_manifest,
    publish,
    traces_of,
)
from tests.support.oauth_server import CLIENT_SECRET, OAuthServer, oauth_server

CALLBACK = "/api/v1/oauth/callback"


@pytest.fixture
async def server() -> AsyncIterator[OAuthServer]:
    async with oauth_server(REDIRECT_URI) as running:
        yield running


async def _authorized(
    http: httpx.AsyncClient, tenant: TenantHandle, server: OAuthServer
) -> tuple[str, list[httpx.Response]]:
    """A published connector and a connection authorized through the provider."""
    await publish(http, tenant, oauth_manifest())
    connection = await oauth_connection(http, tenant, server.url)
    connection_id = connection["id"]
    answers = [await http.get(f"/api/v1/connections/{connection_id}", headers=tenant.headers)]
    answers.append(await _authorize(http, tenant, connection_id))
    back = await server.consent(answers[-1].json()["authorize_url"])
    answers.append(await http.get(CALLBACK, params=back))
    assert answers[-1].status_code == 200, answers[-1].text
    return connection_id, answers


async def _authorize(
    http: httpx.AsyncClient, tenant: TenantHandle, connection_id: str
) -> httpx.Response:
    started = await http.post(
        f"/api/v1/connections/{connection_id}/authorize", headers=tenant.headers
    )
    assert started.status_code == 200, started.text
    return started


async def _client(
    container: Container, tenant: TenantHandle, connection_id: str
) -> ConnectorClient:
    async with container.unit_of_work(tenant.id) as uow:
        return await open_client(
            uow,
            container.hub,
            container.box,
            tenant_id=tenant.id,
            connector="acme",
            connection_id=uuid.UUID(connection_id),
        )


async def _me(client: ConnectorClient) -> httpx.Response:
    return await client.send(client.manifest.actions["me"].request, action="me")


async def _stored(container: Container, tenant: TenantHandle, connection_id: str) -> Connection:
    async with container.unit_of_work(tenant.id) as uow:
        return await uow.connections.get(uuid.UUID(connection_id))


async def test_the_authorization_code_round_trip_with_pkce(
    client: httpx.AsyncClient, tenants: Tenants, container: Container, server: OAuthServer
) -> None:
    tenant = await tenants.create()
    await publish(client, tenant, oauth_manifest())
    created = await oauth_connection(client, tenant, server.url)
    assert (created["status"], created["authorized"]) == ("needs_reauth", False)
    connection_id = created["id"]
    started = await _authorize(client, tenant, connection_id)
    body = started.json()
    query = dict(parse_qsl(urlsplit(body["authorize_url"]).query))
    assert query == {
        "response_type": "code",
        "client_id": "casedesk-test-client",
        "redirect_uri": REDIRECT_URI,
        "state": body["state"],
        "scope": "read write",
        "code_challenge": body["code_challenge"],
        "code_challenge_method": "S256",
    }
    assert body["redirect_uri"] == REDIRECT_URI
    back = await server.consent(body["authorize_url"])
    assert back["state"] == body["state"]
    # The provider's browser redirect carries no API key; Google adds parameters of its own.
    done = await client.get(CALLBACK, params=back | {"authuser": "0", "prompt": "consent"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "active"
    (exchange,) = server.http.requests_to("/oauth/token")
    form = dict(parse_qsl(exchange.body.decode()))
    assert form["grant_type"] == "authorization_code"
    assert challenge_of(form["code_verifier"]) == body["code_challenge"]
    read = await client.get(f"/api/v1/connections/{connection_id}", headers=tenant.headers)
    assert (read.json()["status"], read.json()["authorized"]) == ("active", True)
    assert read.json()["token_expires_at"] is not None
    checked = await client.post(f"/api/v1/connections/{connection_id}/test", headers=tenant.headers)
    assert checked.json() | {"trace_id": None} == {
        "ok": True,
        "status": 200,
        "reason": "200 OK",
        "trace_id": None,
    }
    (me,) = server.http.requests_to("/api/me")
    assert me.headers["authorization"] == f"Bearer {server.issued_access_tokens[0]}"
    replayed = await client.get(CALLBACK, params=back)
    assert replayed.status_code == 400
    assert "used already" in replayed.json()["detail"]

    traces = await traces_of(container, client, tenant, connection_id)
    assert {trace["action"] for trace in traces} == {"oauth.authorization_code", "connection.test"}
    assert checked.json()["trace_id"] in {trace["trace_id"] for trace in traces}
    secrets = [
        CLIENT_SECRET,
        back["code"],
        form["code_verifier"],
        *server.issued_access_tokens,
        *server.issued_refresh_tokens,
    ]
    texts = [r.text for r in (started, done, read, checked, replayed)]
    texts += [orjson.dumps(trace).decode() for trace in traces]
    texts.append((await client.get("/api/v1/connections", headers=tenant.headers)).text)
    leaked = [secret for secret in secrets for text in texts if secret in text]
    assert leaked == []


async def test_a_callback_with_a_bad_used_or_expired_state_is_a_400_that_says_so(
    client: httpx.AsyncClient, tenants: Tenants, container: Container, server: OAuthServer
) -> None:
    tenant = await tenants.create()
    await publish(client, tenant, oauth_manifest())
    connection_id = (await oauth_connection(client, tenant, server.url))["id"]
    unknown = await client.get(CALLBACK, params={"state": "made-up", "code": "x"})
    assert (unknown.status_code, unknown.json()["type"]) == (400, "/problems/oauth-state-invalid")
    assert "matches no authorization" in unknown.json()["detail"]
    missing = await client.get(CALLBACK, params={"code": "x"})
    assert missing.status_code == 400
    assert "no state" in missing.json()["detail"]

    late = (await _authorize(client, tenant, connection_id)).json()
    async with container.unit_of_work(tenant.id) as uow:
        await uow.begin_write()
        await uow.session.execute(
            update(Authorization).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await uow.commit()
    back = await server.consent(late["authorize_url"])
    expired = await client.get(CALLBACK, params=back)
    assert expired.status_code == 400
    assert "expired" in expired.json()["detail"]

    server.deny = True
    denied_start = (await _authorize(client, tenant, connection_id)).json()
    denied = await client.get(CALLBACK, params=await server.consent(denied_start["authorize_url"]))
    assert (denied.status_code, denied.json()["type"]) == (
        400,
        "/problems/oauth-authorization-refused",
    )
    assert "access_denied" in denied.json()["detail"]
    assert server.http.requests_to("/oauth/token") == []
    stored = await _stored(container, tenant, connection_id)
    assert (stored.status, stored.token_sealed) == ("needs_reauth", None)

    nul = await client.get(CALLBACK, params={"state": "a\x00b"})
    assert nul.status_code == 422
    stray = await client.get(CALLBACK, params={"state": "s", "admin": "1"})
    assert stray.status_code == 422

    # States that expired over an hour ago are forgotten when the next authorization starts.
    async with container.unit_of_work(tenant.id) as uow:
        await uow.begin_write()
        await uow.session.execute(
            update(Authorization).values(expires_at=utcnow() - timedelta(hours=2))
        )
        await uow.commit()
    await _authorize(client, tenant, connection_id)
    async with container.unit_of_work(tenant.id) as uow:
        left = (await uow.session.scalars(select(Authorization))).all()
    assert len(left) == 1
    assert left[0].used_at is None


async def test_a_rotating_refresh_token_is_spent_once_under_concurrent_refreshes(
    client: httpx.AsyncClient, tenants: Tenants, container: Container, server: OAuthServer
) -> None:
    tenant = await tenants.create()
    server.access_lifetime = 30  # within the minute before expiry: due for renewal at once
    connection_id, _ = await _authorized(client, tenant, server)
    server.access_lifetime, server.token_delay = 3600, 0.3
    workers = [await _client(container, tenant, connection_id) for _ in range(2)]
    answers = await asyncio.gather(*(_me(worker) for worker in workers))
    assert [answer.status_code for answer in answers] == [200, 200]
    assert server.grant_types == ["authorization_code", "refresh_token"]
    fresh = server.issued_access_tokens[-1]
    used = [r.headers["authorization"] for r in server.http.requests_to("/api/me")]
    assert used == [f"Bearer {fresh}", f"Bearer {fresh}"]
    stored = await _stored(container, tenant, connection_id)
    assert stored.token_expires_at is not None
    assert stored.token_expires_at > utcnow() + timedelta(minutes=50)
    # Later calls use the stored token until it is due.
    await _me(await _client(container, tenant, connection_id))
    assert server.grant_types.count("refresh_token") == 1


async def test_invalid_grant_marks_the_connection_needs_reauth_once_and_never_loops(
    client: httpx.AsyncClient, tenants: Tenants, container: Container, server: OAuthServer
) -> None:
    tenant = await tenants.create()
    server.access_lifetime = 30
    connection_id, _ = await _authorized(client, tenant, server)
    server.revoke_refresh_tokens()
    server.token_delay = 0.2
    workers = [await _client(container, tenant, connection_id) for _ in range(2)]
    outcomes = await asyncio.gather(*(_me(w) for w in workers), return_exceptions=True)
    assert all(isinstance(outcome, NeedsReauthorization) for outcome in outcomes), outcomes
    assert server.grant_types.count("refresh_token") == 1
    for _ in range(3):  # the same client again, and a new one: no call to the provider
        for worker in (workers[0], await _client(container, tenant, connection_id)):
            with pytest.raises(NeedsReauthorization, match="authorize"):
                await _me(worker)
    assert server.grant_types.count("refresh_token") == 1
    assert server.http.requests_to("/api/me") == []

    stored = await _stored(container, tenant, connection_id)
    assert stored.status == "needs_reauth"
    assert "invalid_grant" in (stored.status_reason or "")
    async with container.unit_of_work(tenant.id) as uow:
        events = (
            await uow.session.scalars(
                select(OutboxEvent).where(OutboxEvent.subject_id == uuid.UUID(connection_id))
            )
        ).all()
    assert [(e.type, e.subject_type) for e in events] == [("connection.needs_reauth", "connection")]
    assert "invalid_grant" in events[0].data["reason"]
    assert events[0].data["connection"]["status"] == "needs_reauth"
    read = (await client.get(f"/api/v1/connections/{connection_id}", headers=tenant.headers)).json()
    assert (read["status"], read["authorized"]) == ("needs_reauth", False)
    checked = (
        await client.post(f"/api/v1/connections/{connection_id}/test", headers=tenant.headers)
    ).json()
    assert checked["ok"] is False
    assert "needs authorization" in checked["reason"]

    # An admin authorizes again: the connection works from the next call.
    server.access_lifetime = 3600
    again = await _authorize(client, tenant, connection_id)
    back = await server.consent(again.json()["authorize_url"])
    assert (await client.get(CALLBACK, params=back)).json()["status"] == "active"
    assert (await _me(await _client(container, tenant, connection_id))).status_code == 200


async def test_another_refresh_failure_is_retried_and_leaves_the_connection_as_it_was(
    client: httpx.AsyncClient, tenants: Tenants, container: Container, server: OAuthServer
) -> None:
    tenant = await tenants.create()
    server.access_lifetime = 30
    connection_id, _ = await _authorized(client, tenant, server)
    before = await _stored(container, tenant, connection_id)
    server.fail_token_requests_with = 503
    with pytest.raises(TokenEndpointFailed, match="503"):
        await _me(await _client(container, tenant, connection_id))
    after = await _stored(container, tenant, connection_id)
    assert (after.status, after.token_sealed, after.version) == (
        "active",
        before.token_sealed,
        before.version,
    )
    attempts = container.settings.outbound_max_attempts
    assert server.grant_types == ["authorization_code"] + ["refresh_token"] * attempts
    server.fail_token_requests_with = None
    server.access_lifetime = 3600
    assert (await _me(await _client(container, tenant, connection_id))).status_code == 200
    assert server.grant_types.count("refresh_token") == attempts + 1
    assert (await _stored(container, tenant, connection_id)).status == "active"


@pytest.mark.parametrize("client_auth", ["body", "basic"])
async def test_client_credentials_fetch_a_token_when_needed_and_keep_it(
    client: httpx.AsyncClient,
    tenants: Tenants,
    container: Container,
    server: OAuthServer,
    client_auth: str,
) -> None:
    tenant = await tenants.create()
    manifest: dict[str, Any] = oauth_manifest(grant="oauth2_client_credentials")
    manifest["auth"] |= {"client_auth": client_auth, "token_params": {"audience": "api"}}
    await publish(client, tenant, manifest)
    created = await oauth_connection(client, tenant, server.url)
    assert created["status"] == "active"
    connection_id = created["id"]
    async with container.unit_of_work(tenant.id) as uow:
        with pytest.raises(InvalidInput, match="name a connection"):
            await open_client(
                uow,
                container.hub,
                container.box,
                tenant_id=tenant.id,
                connector="acme",
                connection_id=None,
            )
    first = await _client(container, tenant, connection_id)
    for worker in (first, first, await _client(container, tenant, connection_id)):
        assert (await _me(worker)).status_code == 200
    assert server.grant_types == ["client_credentials"]
    (request,) = server.http.requests_to("/oauth/token")
    form = dict(parse_qsl(request.body.decode()))
    assert (form["scope"], form["audience"]) == ("read write", "api")
    assert ("client_secret" in form) is (client_auth == "body")
    assert request.headers.get("authorization", "").startswith("Basic") is (client_auth == "basic")

    server.access_lifetime = 30  # the next token is due at once: each call fetches one
    changed = await client.put(
        f"/api/v1/connections/{connection_id}",
        json={"name": "Acme", "settings": created["settings"]},
        headers=tenant.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["authorized"] is False  # the new settings get a new token
    await _me(await _client(container, tenant, connection_id))
    await _me(await _client(container, tenant, connection_id))
    assert server.grant_types == ["client_credentials"] * 3
    traces = await traces_of(container, client, tenant, connection_id)
    text = orjson.dumps(traces).decode()
    assert CLIENT_SECRET not in text
    assert not [token for token in server.issued_access_tokens if token in text]

"""OAuth 2.0 on the wire: the PKCE challenge, the authorize URL and token answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from casedesk.integrations.manifests.auth import OAuth2Code
from casedesk.integrations.oauth import (
    InvalidGrant,
    Pkce,
    TokenEndpointFailed,
    TokenRefused,
    Tokens,
    authorize_url,
    challenge_of,
    token_response,
)
from casedesk.kit.errors import InvalidInput

SENT = datetime(2026, 1, 1, tzinfo=UTC)
SCHEME = OAuth2Code.model_validate(
    {
        "type": "oauth2_code",
        "authorize_url": "https://{{ connection.host }}/authorize?audience=api",
        "token_url": "https://{{ connection.host }}/token",
        "scopes": ["mail.read", "offline_access"],
        "authorize_params": {"prompt": "consent"},
    }
)
CONTEXT = {"connection": {"host": "login.example.com", "client_id": "app-1"}, "secrets": {}}


def test_the_challenge_is_rfc_7636s_example() -> None:
    # RFC 7636, Appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert challenge_of(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_new_verifier_is_long_random_and_unreserved() -> None:
    first, second = Pkce.new(), Pkce.new()
    assert first.verifier != second.verifier
    assert 43 <= len(first.verifier) <= 128
    assert set(first.verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
    assert first.challenge == challenge_of(first.verifier)


def test_the_authorize_url_carries_the_request_of_rfc_6749_and_the_challenge() -> None:
    url = authorize_url(
        SCHEME, CONTEXT, redirect_uri="https://desk.example.com/cb", state="st", challenge="ch"
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "login.example.com", "/authorize")
    assert dict(parse_qsl(parts.query)) == {
        "audience": "api",
        "prompt": "consent",
        "response_type": "code",
        "client_id": "app-1",
        "redirect_uri": "https://desk.example.com/cb",
        "state": "st",
        "scope": "mail.read offline_access",
        "code_challenge": "ch",
        "code_challenge_method": "S256",
    }


def test_a_connection_without_a_client_id_is_refused_naming_the_setting() -> None:
    context = {"connection": {"host": "h"}, "secrets": {}}
    with pytest.raises(InvalidInput, match="client_id"):
        authorize_url(SCHEME, context, redirect_uri="https://d/cb", state="s", challenge=None)


def _answer(status: int, document: object) -> httpx.Response:
    return httpx.Response(status, json=document)


def test_a_token_answer_gives_its_tokens_and_expiry_from_when_it_was_asked() -> None:
    tokens = token_response(
        _answer(
            200,
            {
                "access_token": "a",
                "token_type": "bearer",
                "expires_in": "3600",
                "refresh_token": "r",
                "scope": "x",
            },
        ),
        SENT,
    )
    assert tokens == Tokens("a", "Bearer", "r", "x", SENT + timedelta(hours=1))


def test_a_token_without_a_lifetime_never_needs_renewing() -> None:
    tokens = token_response(_answer(200, {"access_token": "a", "token_type": "Bearer"}), SENT)
    assert tokens.expires_at is None
    assert tokens.usable()


def test_a_token_is_renewed_a_minute_before_it_expires() -> None:
    tokens = Tokens("a", expires_at=SENT + timedelta(seconds=100))
    assert tokens.usable(SENT + timedelta(seconds=39))
    assert not tokens.usable(SENT + timedelta(seconds=40))


def test_invalid_grant_is_told_apart_from_other_refusals() -> None:
    with pytest.raises(InvalidGrant) as grant:
        token_response(_answer(400, {"error": "invalid_grant", "error_description": "used"}), SENT)
    assert grant.value.error == "invalid_grant"
    assert grant.value.description == "used"
    with pytest.raises(TokenRefused) as client:
        token_response(_answer(401, {"error": "invalid_client"}), SENT)
    assert not isinstance(client.value, InvalidGrant)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, b"down"),
        (200, b"not json"),
        (200, b'{"token_type": "Bearer"}'),
        (200, b'{"access_token": "a", "token_type": "mac"}'),
    ],
)
def test_an_answer_that_is_no_token_response_fails_the_endpoint(status: int, body: bytes) -> None:
    with pytest.raises(TokenEndpointFailed):
        token_response(httpx.Response(status, content=body), SENT)


def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one() -> None:
    old = Tokens("a1", refresh_token="r1")
    assert old.after_refresh(Tokens("a2")).refresh_token == "r1"
    assert old.after_refresh(Tokens("a2", refresh_token="r2")).refresh_token == "r2"

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from casedesk.traces.redaction import (
    REDACTED,
    REDACTED_ENCODED,
    Redactor,
    looks_secret_field,
    looks_secret_header,
)

RFC3986_QUERY = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
"""query = *( pchar / "/" / "?" ), RFC 3986 section 3.4."""


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "X-Api-Key",
        "Api-Key",
        "X-Auth-Token",
        "X-Hub-Signature-256",
        "X-Amz-Security-Token",
        "Ocp-Apim-Subscription-Key",
        "X-Client-Secret",
    ],
)
def test_secret_headers(name: str) -> None:
    assert looks_secret_header(name)


@pytest.mark.parametrize(
    "name", ["Content-Type", "Keep-Alive", "Accept", "WWW-Authenticate", "traceparent", "X-Monkey"]
)
def test_ordinary_headers(name: str) -> None:
    assert not looks_secret_header(name)


@pytest.mark.parametrize(
    "name",
    [
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "accessToken",
        "secret",
        "client_secret",
        "clientSecret",
        "password",
        "new_password",
        "passwd",
        "api_key",
        "apiKey",
        "apikey",
        "APIKey",
        "signature",
        "sig",
        "private_key",
        "privateKey",
        "authorization",
        "cookie",
        "session",
        "sessionid",
        "credentials",
    ],
)
def test_secret_fields(name: str) -> None:
    assert looks_secret_field(name)


@pytest.mark.parametrize(
    "name", ["max_tokens", "tokenizer", "key", "issue_key", "name", "author", "monkey", "q"]
)
def test_ordinary_fields(name: str) -> None:
    assert not looks_secret_field(name)


def test_declared_names_are_redacted_whatever_their_case() -> None:
    redactor = Redactor.declaring(["Customer_PIN", "X-Shop-Pass"])

    assert redactor.is_secret_field("customer_pin")
    assert redactor.is_secret_header("x-shop-pass")
    assert not Redactor().is_secret_field("customer_pin")


def test_headers_keep_their_order_and_repeats() -> None:
    pairs = [("set-cookie", "a=1"), ("content-type", "text/plain"), ("set-cookie", "b=2")]

    assert Redactor().headers(pairs) == (
        ("set-cookie", REDACTED),
        ("content-type", "text/plain"),
        ("set-cookie", REDACTED),
    )


def test_a_url_loses_its_credentials_fragment_and_secret_parameters_only() -> None:
    url = httpx.URL("https://robot:pw@api.example.com/v1/items?access_token=abc&q=a%20b&flag#top")

    assert Redactor().url(url) == (
        f"https://api.example.com/v1/items?access_token={REDACTED_ENCODED}&q=a%20b&flag"
    )


def test_a_redacted_query_is_still_a_valid_uri_query_that_decodes_to_the_marker() -> None:
    sent = Redactor().url(httpx.URL("https://api.example.com/x?api_key=k&password=p&a=1"))
    query = urlsplit(sent).query

    assert RFC3986_QUERY.fullmatch(query), query
    assert parse_qsl(query) == [("api_key", REDACTED), ("password", REDACTED), ("a", "1")]


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("https://api.example.com/v1/", "https://api.example.com/v1/"),
        ("https://api.example.com", "https://api.example.com/"),
        ("http://[::1]:8080/x?page=2", "http://[::1]:8080/x?page=2"),
    ],
)
def test_a_url_without_secrets_is_kept_as_sent(url: str, sent: str) -> None:
    assert Redactor().url(httpx.URL(url)) == sent


def test_form_names_are_matched_decoded() -> None:
    assert Redactor().form("client%5Fsecret=x&a=1") == f"client%5Fsecret={REDACTED_ENCODED}&a=1"


def test_json_is_redacted_at_any_depth_and_in_lists() -> None:
    document = {
        "user": {"name": "Ada", "password": "pw"},
        "keys": [{"api_key": "k1"}, {"api_key": "k2", "label": "ci"}],
        "credentials": {"user": "u", "pass": "p"},
        "count": 2,
    }

    assert Redactor().json(document) == {
        "user": {"name": "Ada", "password": REDACTED},
        "keys": [{"api_key": REDACTED}, {"api_key": REDACTED, "label": "ci"}],
        "credentials": REDACTED,
        "count": 2,
    }
    assert document["user"] == {"name": "Ada", "password": "pw"}  # the original is untouched


def test_json_without_secrets_comes_back_as_the_same_object() -> None:
    document = {"items": [{"id": 1}, {"id": 2}], "next": None}

    assert Redactor().json(document) is document


def test_a_key_query_parameter_is_redacted_but_a_key_field_is_not() -> None:
    redactor = Redactor()
    url = httpx.URL("https://maps.googleapis.com/maps/api/geocode/json?address=Paris&key=AIzaQQ")

    assert redactor.url(url) == (
        f"https://maps.googleapis.com/maps/api/geocode/json?address=Paris&key={REDACTED_ENCODED}"
    )
    assert redactor.form("key=PROJ-1&summary=x") == "key=PROJ-1&summary=x"
    assert redactor.json({"key": "PROJ-1"}) == {"key": "PROJ-1"}


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        (
            "https://hooks.slack.com/services/T0001/B0002/QQQQQQQQ",
            f"https://hooks.slack.com/services/T0001/B0002/{REDACTED_ENCODED}",
        ),
        (
            "https://hooks.slack.com/workflows/T0001/A0002/123/QQQQ",
            f"https://hooks.slack.com/workflows/T0001/A0002/123/{REDACTED_ENCODED}",
        ),
        (
            "https://discord.com/api/webhooks/1234567890/QQQQ-QQQQ?wait=true",
            f"https://discord.com/api/webhooks/1234567890/{REDACTED_ENCODED}?wait=true",
        ),
        (
            "https://ptb.discord.com/api/v10/webhooks/1234567890/QQQQ/slack",
            f"https://ptb.discord.com/api/v10/webhooks/1234567890/{REDACTED_ENCODED}/slack",
        ),
        (
            "https://acme.webhook.office.com/webhookb2/QQ@QQ/IncomingWebhook/QQQ/QQQQ",
            "https://acme.webhook.office.com/webhookb2/"
            f"{REDACTED_ENCODED}/IncomingWebhook/{REDACTED_ENCODED}/{REDACTED_ENCODED}",
        ),
        (
            "https://hooks.zapier.com/hooks/catch/123/QQQQ/",
            f"https://hooks.zapier.com/hooks/catch/123/{REDACTED_ENCODED}/",
        ),
    ],
)
def test_well_known_webhook_urls_lose_their_secret_segments_on_any_connection(
    url: str, sent: str
) -> None:
    assert Redactor().url(httpx.URL(url)) == sent


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/commands/T0001/B0002/visible",
        "https://discord.com/channels/1234/5678",
        "https://example.com/services/T0001/B0002/visible",
    ],
)
def test_other_paths_of_those_hosts_and_other_hosts_are_kept(url: str) -> None:
    assert Redactor().url(httpx.URL(url)) == url


def test_a_connection_declares_its_secret_path_segments() -> None:
    redactor = Redactor.declaring([], ["/v1/hooks/{secret}", "/bots/{secret}/*/{secret}"])

    assert redactor.url(httpx.URL("https://chat.example/v1/hooks/QQQ/messages?page=2")) == (
        f"https://chat.example/v1/hooks/{REDACTED_ENCODED}/messages?page=2"
    )
    assert redactor.url(httpx.URL("https://chat.example/bots/QQ/send/QQ")) == (
        f"https://chat.example/bots/{REDACTED_ENCODED}/send/{REDACTED_ENCODED}"
    )
    assert redactor.url(httpx.URL("https://chat.example/v1/users/me")) == (
        "https://chat.example/v1/users/me"
    )
    assert redactor.url(httpx.URL("https://chat.example/v1/hooks")) == (
        "https://chat.example/v1/hooks"
    )


def test_a_path_pattern_must_mark_a_secret_segment() -> None:
    with pytest.raises(ValueError, match="marks no segment"):
        Redactor.declaring([], ["/services/*/*"])


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ('{"password": "x", "a": 1}', f'{{"password": "{REDACTED}", "a": 1}}'),
        (
            '{"credentials": {"user": "u", "x": [1, {"a": "}"}]}, "n": 2}',
            f'{{"credentials": "{REDACTED}", "n": 2}}',
        ),
        (
            '[{"token": "a"}, {"token": 5}]',
            f'[{{"token": "{REDACTED}"}}, {{"token": "{REDACTED}"}}]',
        ),
        ('{"a": 1, "access_token": "abc', f'{{"a": 1, "access_token": "{REDACTED}"'),
        ('{"credentials": {"user": "u", "pass', f'{{"credentials": "{REDACTED}"'),
        ('{"pass\\u0077ord": "zz"}', f'{{"pass\\u0077ord": "{REDACTED}"}}'),
        ('["password", "x"]', '["password", "x"]'),
        ('{"x": "a \\" \\"password\\": \\"y"}', '{"x": "a \\" \\"password\\": \\"y"}'),
        ('{"access_to', '{"access_to'),
        ('{"sig": nul', f'{{"sig": "{REDACTED}"'),
    ],
)
def test_json_text_cut_short_or_malformed_is_redacted_as_written(text: str, redacted: str) -> None:
    assert Redactor().json_text(text) == redacted

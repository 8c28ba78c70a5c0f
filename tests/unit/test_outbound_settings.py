"""The outbound and trace settings: read from the environment, wrong values named."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from casedesk.config import SettingsError, load_settings


def test_defaults_allow_no_internal_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASEDESK_OUTBOUND_ALLOWED_NETWORKS", raising=False)

    settings = load_settings()

    assert settings.outbound_networks == ()
    assert settings.outbound_timeout_seconds == 30
    assert settings.outbound_max_attempts == 4
    assert settings.outbound_max_response_bytes == 10 * 1024 * 1024
    assert settings.trace_body_limit_bytes == 65536
    assert settings.trace_buffer_size == 10_000


def test_allowed_networks_are_comma_separated_cidrs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEDESK_OUTBOUND_ALLOWED_NETWORKS", " 127.0.0.0/8, ::1 ,10.1.0.0/16,")

    settings = load_settings()

    assert settings.outbound_allowed_networks == "127.0.0.0/8,::1/128,10.1.0.0/16"
    assert settings.outbound_networks == (
        ip_network("127.0.0.0/8"),
        ip_network("::1/128"),
        ip_network("10.1.0.0/16"),
    )


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("CASEDESK_OUTBOUND_ALLOWED_NETWORKS", "10.0.0.1/8", "did you mean 10.0.0.0/8?"),
        ("CASEDESK_OUTBOUND_ALLOWED_NETWORKS", "intranet", "not an IP network in CIDR"),
        ("CASEDESK_OUTBOUND_ALLOWED_NETWORKS", "10.0.0.0/33", "not an IP network in CIDR"),
        ("CASEDESK_OUTBOUND_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("CASEDESK_OUTBOUND_MAX_ATTEMPTS", "0", "greater than or equal to 1"),
        ("CASEDESK_OUTBOUND_MAX_RESPONSE_BYTES", "100", "greater than or equal to 1024"),
        ("CASEDESK_TRACE_BODY_LIMIT_BYTES", "-1", "greater than or equal to 0"),
        ("CASEDESK_TRACE_BUFFER_SIZE", "0", "greater than or equal to 1"),
    ],
)
def test_a_wrong_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as raised:
        load_settings()

    assert f"{variable}: " in str(raised.value)
    assert complaint in str(raised.value)

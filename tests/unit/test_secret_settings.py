"""The secret keys in the settings: the default is refused beyond the embedded mode, and
older keys are listed for a rotation."""

from __future__ import annotations

import re

import pytest

from casedesk.config import INSECURE_SECRET_KEY, SettingsError, load_settings

KEY = "a-real-key-for-this-deployment"
OLD = "the-key-this-deployment-had"


@pytest.fixture(autouse=True)
def default_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CASEDESK_SECRET_KEY", "CASEDESK_HOST", "CASEDESK_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "url", ["postgresql://app@db/casedesk", "mysql://root@db/casedesk", "mariadb://r@db/c"]
)
def test_the_default_key_is_refused_with_a_database_server(url: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(database_url=url)

    message = str(refused.value)
    assert "CASEDESK_SECRET_KEY: the insecure development default is refused with a" in message
    assert "casedesk secrets generate-key" in message
    assert "CASEDESK_PREVIOUS_SECRET_KEYS" in message


def test_the_default_key_is_refused_when_serve_listens_beyond_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CASEDESK_HOST", "0.0.0.0")

    with pytest.raises(SettingsError, match=re.escape("when casedesk serve listens on 0.0.0.0")):
        load_settings()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_the_default_key_is_fine_for_the_embedded_mode_on_loopback(host: str) -> None:
    settings = load_settings(host=host)

    assert settings.secret_key == INSECURE_SECRET_KEY
    settings.refuse_insecure_secret_key(host=host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "casedesk.example.com"])
def test_a_serve_host_beyond_loopback_is_refused_with_the_default_key(host: str) -> None:
    settings = load_settings()

    with pytest.raises(SettingsError, match=re.escape(f"listens on {host}")):
        settings.refuse_insecure_secret_key(host=host)


def test_a_key_of_ones_own_is_accepted_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEDESK_SECRET_KEY", KEY)

    settings = load_settings(database_url="postgresql://app@db/casedesk", host="0.0.0.0")

    settings.refuse_insecure_secret_key(host="0.0.0.0")
    assert settings.secret_keys == (KEY,)


def test_previous_keys_follow_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEDESK_SECRET_KEY", KEY)
    monkeypatch.setenv("CASEDESK_PREVIOUS_SECRET_KEYS", f" {OLD} ,{INSECURE_SECRET_KEY},")

    settings = load_settings(database_url="postgresql://app@db/casedesk")

    assert settings.secret_keys == (KEY, OLD, INSECURE_SECRET_KEY)


def test_a_short_previous_key_is_refused_without_being_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CASEDESK_PREVIOUS_SECRET_KEYS", f"{OLD},tooshort")

    with pytest.raises(SettingsError) as refused:
        load_settings()

    assert "CASEDESK_PREVIOUS_SECRET_KEYS" in str(refused.value)
    assert "key 2 has fewer" in str(refused.value)
    assert "tooshort" not in str(refused.value)

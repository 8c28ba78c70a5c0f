from __future__ import annotations

import pytest

from casedesk.config import SettingsError, load_settings


def test_defaults_are_the_embedded_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CASEDESK_DATABASE_URL", "CASEDESK_REDIS_URL", "CASEDESK_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./casedesk.db"
    assert settings.redis_url is None
    assert settings.broker_url is None
    assert settings.database_dialect == "sqlite"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("mysql://root@h/db", "mysql+asyncmy://root@h/db"),
        ("mariadb://root@h/db", "mysql+asyncmy://root@h/db"),
    ],
)
def test_database_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert load_settings(database_url=given).database_url == expected


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEDESK_DATABASE_URL", "postgresql://app@db/casedesk")
    monkeypatch.setenv("CASEDESK_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("CASEDESK_WORKERS", "4")
    settings = load_settings()
    assert settings.database_url == "postgresql+asyncpg://app@db/casedesk"
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.workers == 4


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("CASEDESK_DATABASE_URL", "oracle://x/y", "unsupported database scheme 'oracle'"),
        ("CASEDESK_DATABASE_URL", "no-scheme-here", "scheme://"),
        ("CASEDESK_REDIS_URL", "http://cache", "redis://"),
        ("CASEDESK_BROKER_URL", "redis://x", "amqp://"),
        ("CASEDESK_PORT", "70000", "less than or equal to 65535"),
        ("CASEDESK_WORKERS", "many", "valid integer"),
        ("CASEDESK_LOG_FORMAT", "xml", "'json' or 'console'"),
        ("CASEDESK_SERVER_LOOP", "trio", "'uvloop' or 'asyncio'"),
        ("CASEDESK_SECRET_KEY", "short", "at least 16"),
    ],
)
def test_a_wrong_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert variable in str(caught.value)
    assert complaint in str(caught.value)


def test_every_wrong_setting_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEDESK_PORT", "0")
    monkeypatch.setenv("CASEDESK_BROKER_URL", "nope")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "CASEDESK_PORT" in str(caught.value)
    assert "CASEDESK_BROKER_URL" in str(caught.value)


def test_attachments_live_next_to_the_sqlite_file_unless_set() -> None:
    from pathlib import Path

    from casedesk.config import load_settings

    beside = load_settings(database_url="sqlite:///data/desk/casedesk.db", attachments_dir=None)
    assert beside.attachments_path == Path("data/desk/attachments")
    server = load_settings(
        database_url="postgresql://db/casedesk", attachments_dir=None, secret_key="k" * 32
    )
    assert server.attachments_path == Path("attachments")
    chosen = load_settings(attachments_dir="/srv/blobs")
    assert chosen.attachments_path == Path("/srv/blobs")


@pytest.mark.parametrize("url", ["http://bucket/x", "s3://", "s3:bucket", "ftp://host/x"])
def test_a_blob_url_is_s3_or_file(url: str) -> None:
    from casedesk.config import SettingsError, load_settings

    with pytest.raises(SettingsError, match="CASEDESK_BLOB_URL"):
        load_settings(blob_url=url)


def test_a_file_blob_url_names_the_attachments_folder() -> None:
    from pathlib import Path

    from casedesk.config import load_settings

    assert load_settings(blob_url="file:///srv/blobs").attachments_path == Path("/srv/blobs")

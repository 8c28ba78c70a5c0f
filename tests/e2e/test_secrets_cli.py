"""The secret key through the real ``casedesk`` command: the default refused beyond the
embedded mode, a key generated, and stored secrets re-sealed after a rotation."""

from __future__ import annotations

import pytest

from casedesk.config import INSECURE_SECRET_KEY
from casedesk.kit.crypto import SecretBox
from casedesk.store.database import Database
from tests.e2e.test_cli_and_server import _free_port, casedesk
from tests.support.backends import ScratchDatabase
from tests.support.secrets import NEW_KEY, OLD_KEY, old_secrets, seed_webhooks, stored_secrets

pytestmark = pytest.mark.e2e


def test_the_default_key_with_a_database_server_stops_every_command_with_exit_2() -> None:
    # Refused before any connection is tried, so no server needs to be there.
    url = "postgresql://casedesk@127.0.0.1:1/casedesk"

    for command in (["db", "current"], ["worker"], ["serve"]):
        refused = casedesk(url, *command, CASEDESK_SECRET_KEY=INSECURE_SECRET_KEY)
        assert refused.returncode == 2, (command, refused.stderr)
        assert "CASEDESK_SECRET_KEY: the insecure development default is refused" in (
            refused.stderr
        )
        assert "casedesk secrets generate-key" in refused.stderr


@pytest.mark.parametrize(
    ("options", "env"),
    [(["--host", "0.0.0.0"], {}), ([], {"CASEDESK_HOST": "0.0.0.0"})],
)
def test_serve_beyond_loopback_with_the_default_key_exits_2(
    tmp_path_factory: pytest.TempPathFactory, options: list[str], env: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'embedded.db'}"

    refused = casedesk(
        url,
        "serve",
        "--port",
        str(_free_port()),
        *options,
        CASEDESK_SECRET_KEY=INSECURE_SECRET_KEY,
        **env,
    )

    assert refused.returncode == 2, refused.stderr
    assert "when casedesk serve listens on 0.0.0.0" in refused.stderr


def test_generate_key_prints_a_key_the_settings_accept(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'keys.db'}"

    first = casedesk(url, "secrets", "generate-key").stdout.strip()
    # It works where the settings refuse the default key: that is where one needs it.
    elsewhere = casedesk(
        "postgresql://casedesk@127.0.0.1:1/casedesk",
        "secrets",
        "generate-key",
        CASEDESK_SECRET_KEY=INSECURE_SECRET_KEY,
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    second = elsewhere.stdout.strip()

    assert len(first) >= 40
    assert first != second
    assert casedesk(url, "db", "upgrade", CASEDESK_SECRET_KEY=first).returncode == 0


async def test_rotate_reseals_every_secret_then_has_nothing_left_to_do(
    empty_database: ScratchDatabase,
) -> None:
    url = empty_database.url
    assert casedesk(url, "db", "upgrade").returncode == 0
    plain, sealed = old_secrets(3)
    database = Database(url, pool_size=2)
    try:
        await seed_webhooks(database, [sealed[:2], sealed[2:]])
        keys = {"CASEDESK_SECRET_KEY": NEW_KEY, "CASEDESK_PREVIOUS_SECRET_KEYS": OLD_KEY}

        first = casedesk(url, "secrets", "rotate", "--batch-size", "1", **keys)
        again = casedesk(url, "secrets", "rotate", **keys)

        newest = SecretBox(NEW_KEY)
        assert first.returncode == 0, first.stderr
        assert f"3 re-sealed with key {newest.key_id}, 0 already sealed with it, 0 unreadable" in (
            first.stdout
        )
        assert again.returncode == 0, again.stderr
        assert "0 re-sealed" in again.stdout
        assert "3 already sealed with it" in again.stdout
        after = await stored_secrets(database)
        assert sorted(newest.open(value) for value in after.values()) == sorted(plain)
    finally:
        await database.dispose()


async def test_rotate_names_what_no_key_opens_and_exits_1(
    empty_database: ScratchDatabase,
) -> None:
    url = empty_database.url
    assert casedesk(url, "db", "upgrade").returncode == 0
    _, sealed = old_secrets(1)
    database = Database(url, pool_size=2)
    try:
        stored = await seed_webhooks(database, [sealed])
    finally:
        await database.dispose()

    # The old key is not listed: nothing opens the stored secret.
    refused = casedesk(url, "secrets", "rotate", CASEDESK_SECRET_KEY=NEW_KEY)

    assert refused.returncode == 1
    assert "0 re-sealed" in refused.stdout
    assert "1 unreadable" in refused.stdout
    assert f"webhook {next(iter(stored))}" in refused.stderr
    assert "CASEDESK_PREVIOUS_SECRET_KEYS" in refused.stderr

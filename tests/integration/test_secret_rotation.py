"""Re-sealing stored secrets with the newest key, on every database, through the function
``casedesk secrets rotate`` calls."""

from __future__ import annotations

from casedesk.activities.secrets import count_stored_secrets, rotate_stored_secrets
from casedesk.kit.crypto import SecretBox
from casedesk.store.database import Database
from tests.support.secrets import (  # migrated_database: the fixture `database`
    NEW_KEY,
    OLD_KEY,
    migrated_database,  # noqa: F401
    old_secrets,
    seed_webhooks,
    stored_secrets,
)


async def test_every_stored_secret_is_resealed_with_the_newest_key_in_batches(
    database: Database,
) -> None:
    plain, sealed = old_secrets(5)
    await seed_webhooks(database, [sealed[:3], sealed[3:]])
    rotating = SecretBox(NEW_KEY, [OLD_KEY])
    batches: list[int] = []

    assert await count_stored_secrets(database) == 5
    rotation = await rotate_stored_secrets(
        database, rotating, batch_size=2, on_batch=batches.append
    )

    assert (rotation.resealed, rotation.current, rotation.unreadable) == (5, 0, [])
    assert batches == [2, 1, 2]  # three webhooks of one tenant, two of the other
    after = await stored_secrets(database)
    newest_only = SecretBox(NEW_KEY)
    assert sorted(newest_only.open(value) for value in after.values()) == sorted(plain)
    assert all(value.startswith(newest_only.key_id + ":") for value in after.values())


async def test_rotating_again_changes_nothing(database: Database) -> None:
    _, sealed = old_secrets(3)
    await seed_webhooks(database, [sealed])
    rotating = SecretBox(NEW_KEY, [OLD_KEY])
    await rotate_stored_secrets(database, rotating)
    once = await stored_secrets(database)

    again = await rotate_stored_secrets(database, rotating, batch_size=1)

    assert (again.resealed, again.current, again.unreadable) == (0, 3, [])
    assert await stored_secrets(database) == once


async def test_a_secret_no_configured_key_opens_is_reported_and_left_as_it_is(
    database: Database,
) -> None:
    _, sealed = old_secrets(2)
    foreign = SecretBox("a-key-nobody-configured-here").seal("whsec_lost")
    stored = await seed_webhooks(database, [[*sealed, foreign]])
    lost = next(webhook for webhook, value in stored.items() if value == foreign)

    rotation = await rotate_stored_secrets(database, SecretBox(NEW_KEY, [OLD_KEY]))

    assert (rotation.resealed, rotation.current) == (2, 0)
    assert len(rotation.unreadable) == 1
    assert str(lost) in rotation.unreadable[0]
    assert (await stored_secrets(database))[lost] == foreign

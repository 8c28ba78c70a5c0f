"""A key rotation re-seals connections' secrets and OAuth2 tokens too, on every database."""

from __future__ import annotations

import uuid

from casedesk.activities import identity
from casedesk.activities.secrets import count_stored_secrets, rotate_stored_secrets
from casedesk.kit.crypto import SecretBox
from casedesk.store.database import Database
from casedesk.store.models import Connection, Mailbox, Subscription, Workflow
from casedesk.store.unit_of_work import UnitOfWork
from tests.support.secrets import NEW_KEY, OLD_KEY, migrated_database  # noqa: F401 - fixture


async def _connections(database: Database, old: SecretBox) -> uuid.UUID:
    async with UnitOfWork(database) as uow:
        tenant = await identity.create_tenant(uow, slug="rot-conn", name="t", edition="standard")
    async with UnitOfWork(database, tenant.id) as uow:
        await uow.begin_write()
        for number in range(2):
            uow.connections.add(
                Connection(
                    name=f"c{number}",
                    connector="rest",
                    connector_version=1,
                    settings={},
                    secrets_sealed=old.seal(f'{{"token": "secret-{number}"}}'),
                    token_sealed=old.seal('{"access_token": "a"}') if number else None,
                )
            )
        await uow.commit()
    return tenant.id


async def test_connection_secrets_and_tokens_are_resealed_with_the_newest_key(
    database: Database,
) -> None:
    tenant_id = await _connections(database, SecretBox(OLD_KEY))
    assert await count_stored_secrets(database) == 3
    batches: list[int] = []

    rotation = await rotate_stored_secrets(
        database, SecretBox(NEW_KEY, [OLD_KEY]), batch_size=1, on_batch=batches.append
    )

    assert (rotation.resealed, rotation.current, rotation.unreadable) == (3, 0, [])
    assert batches == [1, 2]
    newest_only = SecretBox(NEW_KEY)
    async with UnitOfWork(database, tenant_id) as uow:
        page = await uow.connections.list_page(limit=10, cursor=None)
    opened = sorted(newest_only.open(c.secrets_sealed or "") for c in page.items)
    assert opened == ['{"token": "secret-0"}', '{"token": "secret-1"}']
    assert [newest_only.open(c.token_sealed) for c in page.items if c.token_sealed] == [
        '{"access_token": "a"}'
    ]
    again = await rotate_stored_secrets(database, SecretBox(NEW_KEY, [OLD_KEY]))
    assert (again.resealed, again.current) == (0, 3)


async def test_subscription_hook_tokens_and_secrets_are_resealed_with_the_newest_key(
    database: Database,
) -> None:
    old = SecretBox(OLD_KEY)
    async with UnitOfWork(database) as uow:
        tenant = await identity.create_tenant(uow, slug="rot-sub", name="t", edition="standard")
    async with UnitOfWork(database, tenant.id) as uow:
        await uow.begin_write()
        workflow = uow.workflows.add(Workflow(code="w", name="w", draft={}, latest_version=1))
        await uow.flush()
        uow.subscriptions.add(
            Subscription(
                workflow_id=workflow.id,
                trigger="delivery",
                settings={},
                hook_token_hash="0" * 64,
                hook_token_sealed=old.seal("the-hook-token"),
                secrets_sealed=old.seal('{"signing_secret": "s3cret"}'),
            )
        )
        await uow.commit()
    assert await count_stored_secrets(database) == 2

    rotation = await rotate_stored_secrets(database, SecretBox(NEW_KEY, [OLD_KEY]))

    assert (rotation.resealed, rotation.unreadable) == (2, [])
    newest_only = SecretBox(NEW_KEY)
    async with UnitOfWork(database, tenant.id) as uow:
        [subscription] = (await uow.subscriptions.list_page(limit=5, cursor=None)).items
    assert newest_only.open(subscription.hook_token_sealed or "") == "the-hook-token"
    assert newest_only.open(subscription.secrets_sealed or "") == '{"signing_secret": "s3cret"}'


async def test_mailbox_passwords_are_resealed_with_the_newest_key(database: Database) -> None:
    old = SecretBox(OLD_KEY)
    async with UnitOfWork(database) as uow:
        tenant = await identity.create_tenant(uow, slug="rot-mail", name="t", edition="standard")
    async with UnitOfWork(database, tenant.id) as uow:
        await uow.begin_write()
        for number in range(2):
            uow.mailboxes.add(
                Mailbox(
                    name=f"m{number}",
                    address=f"m{number}@example.com",
                    host="imap.example.com",
                    port=993,
                    security="tls",
                    username=f"m{number}",
                    secret_sealed=old.seal(f"password-{number}") if number else None,
                    template="question",
                    last_uid=0,
                    last_count=0,
                    failures=0,
                )
            )
        await uow.commit()
    assert await count_stored_secrets(database) == 1

    rotation = await rotate_stored_secrets(database, SecretBox(NEW_KEY, [OLD_KEY]))

    assert (rotation.resealed, rotation.current, rotation.unreadable) == (1, 0, [])
    async with UnitOfWork(database, tenant.id) as uow:
        kept = [m.secret_sealed for m in await uow.mailboxes.all() if m.secret_sealed]
    assert [SecretBox(NEW_KEY).open(value) for value in kept] == ["password-1"]

"""Stored secrets for rotation tests: tenants with webhooks sealed by a given key."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from casedesk.activities import identity
from casedesk.domain.webhooks.signing import new_secret
from casedesk.kit.crypto import SecretBox
from casedesk.store import migrate
from casedesk.store.database import Database, nullpool_engine
from casedesk.store.models import WebhookSubscription
from casedesk.store.unit_of_work import UnitOfWork
from tests.support.backends import ScratchDatabase

OLD_KEY = "the-key-this-deployment-had-so-far"
NEW_KEY = "the-key-this-deployment-moves-to"


def sealed_without_key_id(secret_key: str, plaintext: str) -> str:
    """A secret as casedesk sealed it before key ids: a bare Fernet token."""
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"casedesk stored secrets"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived)).encrypt(plaintext.encode()).decode()


async def seed_webhooks(
    database: Database, sealed: list[list[str]], *, tenant_prefix: str = "rot"
) -> dict[uuid.UUID, str]:
    """One tenant per list in ``sealed``, with one webhook per sealed value in it; returns
    the sealed value of each webhook, by id."""
    stored: dict[uuid.UUID, str] = {}
    for number, values in enumerate(sealed):
        async with UnitOfWork(database) as uow:
            tenant = await identity.create_tenant(
                uow,
                slug=f"{tenant_prefix}-{number}-{uuid.uuid4().hex[:6]}",
                name="t",
                edition="standard",
            )
        async with UnitOfWork(database, tenant.id) as uow:
            await uow.begin_write()
            for value in values:
                webhook = WebhookSubscription(
                    name="hook", url="https://example.com/hook", events=["*"], secret_sealed=value
                )
                uow.webhooks.add(webhook)
                await uow.flush()
                stored[webhook.id] = value
            await uow.commit()
    return stored


def old_secrets(count: int) -> tuple[list[str], list[str]]:
    """``count`` signing secrets, and the same sealed with ``OLD_KEY`` (the first one in the
    format without a key id)."""
    plain = [new_secret() for _ in range(count)]
    box = SecretBox(OLD_KEY)
    sealed = [sealed_without_key_id(OLD_KEY, plain[0]), *(box.seal(p) for p in plain[1:])]
    return plain, sealed


async def stored_secrets(database: Database) -> dict[uuid.UUID, str]:
    """Every webhook's sealed secret, by id, in every tenant."""
    found: dict[uuid.UUID, str] = {}
    async with UnitOfWork(database) as uow:
        tenants = await uow.tenants.all()
    for tenant in tenants:
        async with UnitOfWork(database, tenant.id) as uow:
            found |= {hook.id: hook.secret_sealed for hook in await uow.webhooks.all()}
    return found


@pytest.fixture(name="database")
async def migrated_database(empty_database: ScratchDatabase) -> AsyncIterator[Database]:
    """A database of its own, migrated: a rotation goes through every tenant's secrets."""
    engine = nullpool_engine(empty_database.url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    database = Database(empty_database.url, pool_size=2)
    yield database
    await database.dispose()

"""Re-sealing the stored secrets with the newest key, after ``CASEDESK_SECRET_KEY`` changed.

The stored secrets are the webhooks' signing secrets today. Each tenant's are gone through
in id order, a batch per transaction, each batch locked while it is re-sealed so that a
secret rotated by an admin meanwhile is not written over. A secret sealed with the newest
key already is left alone, so running it again changes nothing; one that no configured key
opens is left as it is and reported.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from casedesk.kit.crypto import SecretBox, SecretUnreadable
from casedesk.store.database import Database
from casedesk.store.unit_of_work import UnitOfWork

BATCH_SIZE = 200


@dataclass
class Rotation:
    resealed: int = 0
    """Secrets sealed again with the newest key."""
    current: int = 0
    """Secrets that were sealed with the newest key already."""
    unreadable: list[str] = field(default_factory=list)
    """What no configured key opens, e.g. ``webhook <id> (tenant acme)``."""

    @property
    def seen(self) -> int:
        return self.resealed + self.current + len(self.unreadable)


async def count_stored_secrets(database: Database) -> int:
    total = 0
    async with UnitOfWork(database) as uow:
        tenants = await uow.tenants.all()
    for tenant in tenants:
        async with UnitOfWork(database, tenant.id) as uow:
            total += await uow.webhooks.count()
    return total


async def rotate_stored_secrets(
    database: Database,
    box: SecretBox,
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], None] = lambda done: None,
) -> Rotation:
    """Re-seal every stored secret with ``box``'s newest key; ``on_batch`` is told how many
    secrets each committed batch held."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    rotation = Rotation()
    async with UnitOfWork(database) as uow:
        tenants = await uow.tenants.all()
    for tenant in tenants:
        after: uuid.UUID | None = None
        while True:
            async with UnitOfWork(database, tenant.id) as uow:
                await uow.begin_write()
                batch = await uow.webhooks.locked_batch_after(after, batch_size)
                for webhook in batch:
                    if box.is_current(webhook.secret_sealed):
                        rotation.current += 1
                        continue
                    try:
                        webhook.secret_sealed = box.reseal(webhook.secret_sealed)
                    except SecretUnreadable:
                        rotation.unreadable.append(f"webhook {webhook.id} (tenant {tenant.slug})")
                        continue
                    rotation.resealed += 1
                await uow.commit()
            if batch:
                on_batch(len(batch))
            if len(batch) < batch_size:
                break
            after = batch[-1].id
    return rotation

"""Re-sealing the stored secrets with the newest key, after ``CASEDESK_SECRET_KEY`` changed.

The stored secrets are the webhooks' signing secrets, the connections' secrets and OAuth2
tokens, and the subscriptions' hook tokens and own secrets (a hook's signing secret). Each
tenant's are gone through in id order, a batch per transaction, each batch locked while it is
re-sealed so that a secret rotated by an admin (or a token renewed) meanwhile is not written
over. A secret sealed with the newest key already is left alone, so running it again changes
nothing; one that no configured key opens is left as it is and reported.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from casedesk.kit.crypto import SecretBox, SecretUnreadable
from casedesk.store.database import Database
from casedesk.store.models import Tenant
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


@dataclass(frozen=True, slots=True)
class _Keeper:
    """A kind of row that keeps sealed values: its name, its sealed columns, and how a
    batch of its rows is locked in id order."""

    label: str
    columns: tuple[str, ...]
    batch: Callable[[UnitOfWork, uuid.UUID | None, int], Awaitable[Sequence[Any]]]


KEEPERS = (
    _Keeper(
        "webhook",
        ("secret_sealed",),
        lambda uow, after, n: uow.webhooks.locked_batch_after(after, n),
    ),
    _Keeper(
        "connection",
        ("secrets_sealed", "token_sealed"),
        lambda uow, after, n: uow.connections.locked_batch_after(after, n),
    ),
    _Keeper(
        "subscription",
        ("hook_token_sealed", "secrets_sealed"),
        lambda uow, after, n: uow.subscriptions.locked_batch_after(after, n),
    ),
    _Keeper(
        "mailbox",
        ("secret_sealed", "smtp_secret_sealed", "dkim_key_sealed"),
        lambda uow, after, n: uow.mailboxes.locked_batch_after(after, n),
    ),
)


async def count_stored_secrets(database: Database) -> int:
    total = 0
    async with UnitOfWork(database) as uow:
        tenants = await uow.tenants.all()
    for tenant in tenants:
        async with UnitOfWork(database, tenant.id) as uow:
            total += await uow.webhooks.count()
            total += await uow.connections.count_sealed()
            total += await uow.subscriptions.count_sealed()
            total += await uow.mailboxes.count_sealed()
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
        for keeper in KEEPERS:
            await _rotate(database, box, tenant, keeper, batch_size, on_batch, rotation)
    return rotation


async def _rotate(
    database: Database,
    box: SecretBox,
    tenant: Tenant,
    keeper: _Keeper,
    batch_size: int,
    on_batch: Callable[[int], None],
    rotation: Rotation,
) -> None:
    after: uuid.UUID | None = None
    while True:
        async with UnitOfWork(database, tenant.id) as uow:
            await uow.begin_write()
            batch = await keeper.batch(uow, after, batch_size)
            values = 0
            for row in batch:
                for column in keeper.columns:
                    sealed = getattr(row, column)
                    if sealed is None:
                        continue
                    values += 1
                    if box.is_current(sealed):
                        rotation.current += 1
                        continue
                    try:
                        setattr(row, column, box.reseal(sealed))
                    except SecretUnreadable:
                        rotation.unreadable.append(
                            f"{keeper.label} {row.id} (tenant {tenant.slug})"
                        )
                        continue
                    rotation.resealed += 1
            await uow.commit()
        if values:
            on_batch(values)
        if len(batch) < batch_size:
            return
        after = batch[-1].id

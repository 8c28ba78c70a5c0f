"""The blob sweep: deleting stored bytes that no attachment row refers to any more.

Blobs are shared by content (one file for every row, of any tenant, with its SHA-256), so
deleting a case or a tenant deletes rows and leaves the bytes. Bytes are also left by writes
whose transaction then failed (the quota filled up meanwhile, the case was deleted) and, on
disk, by temporary files of writes a crash interrupted (``incoming/blob-…``).

The sweep lists the store, keeps every blob written within the grace period
(``CASEDESK_BLOB_SWEEP_GRACE_HOURS``, 24 by default), asks the database which of the others
any attachment row still names (``ix_attachments_sha256``, every tenant, in batches), and
deletes the rest. The grace period is what makes it safe alongside uploads: an upload writes
its bytes first and its row after, and storing bytes that are there already makes the blob
new again (``BlobStore.put``), so a blob an upload is about to refer to is never old enough
to go. A dry run counts what would go and deletes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from prometheus_client import Counter
from sqlalchemy import select

from casedesk.kit.clock import utcnow
from casedesk.kit.logging import get_logger
from casedesk.store.blobs import BlobInfo, BlobStore
from casedesk.store.database import Database
from casedesk.store.models import Attachment
from casedesk.store.tenancy import ALL_TENANTS
from casedesk.store.unit_of_work import UnitOfWork

SWEPT = Counter("casedesk_blobs_swept_total", "Unreferenced blobs deleted by the blob sweep")
SWEPT_BYTES = Counter("casedesk_blobs_swept_bytes_total", "Bytes of the blobs the sweep deleted")
BATCH = 500
log = get_logger(__name__)


@dataclass(slots=True)
class SweepResult:
    """What one sweep found and did (a dry run: what it would have deleted)."""

    dry_run: bool
    examined: int = 0
    """Blobs listed."""
    recent: int = 0
    """Blobs kept because they were written within the grace period."""
    referenced: int = 0
    """Blobs kept because an attachment row names them."""
    deleted: int = 0
    deleted_bytes: int = 0
    leftovers: int = 0
    """Temporary files of unfinished writes deleted."""
    leftover_bytes: int = 0
    deleted_digests: list[str] = field(default_factory=list)


class BlobSweeper:
    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        *,
        grace: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if grace < timedelta(hours=1):
            raise ValueError("the blob sweep's grace period is at least an hour")
        self.database = database
        self.blobs = blobs
        self.grace = grace
        self.clock = clock

    async def sweep(
        self, *, dry_run: bool = False, on_examined: Callable[[int], None] | None = None
    ) -> SweepResult:
        """Delete (unless ``dry_run``) every blob older than the grace period that no row
        names, and old temporary files; ``on_examined`` is told how many blobs each batch
        looked at."""
        result = SweepResult(dry_run=dry_run)
        cutoff = self.clock() - self.grace
        listing = await asyncio.to_thread(lambda: iter(self.blobs.listing()))
        while batch := await asyncio.to_thread(_next_batch, listing):
            result.examined += len(batch)
            old = [blob for blob in batch if blob.modified < cutoff]
            result.recent += len(batch) - len(old)
            named = await self._referenced([blob.sha256 for blob in old])
            result.referenced += len(named)
            for blob in old:
                if blob.sha256 in named:
                    continue
                if not dry_run:
                    # Stored again since it was listed (an upload of the same bytes): kept.
                    now = await asyncio.to_thread(self.blobs.info, blob.sha256)
                    if now is None or now.modified >= cutoff:
                        result.recent += 1
                        continue
                    await asyncio.to_thread(self.blobs.delete, blob.sha256)
                    SWEPT.inc()
                    SWEPT_BYTES.inc(blob.size)
                result.deleted += 1
                result.deleted_bytes += blob.size
                result.deleted_digests.append(blob.sha256)
            if on_examined is not None:
                on_examined(len(batch))
        for leftover in await asyncio.to_thread(lambda: list(self.blobs.leftovers(cutoff))):
            if not dry_run:
                await asyncio.to_thread(self.blobs.delete_leftover, leftover.sha256)
            result.leftovers += 1
            result.leftover_bytes += leftover.size
        log.info(
            "blob sweep",
            dry_run=dry_run,
            examined=result.examined,
            deleted=result.deleted,
            deleted_bytes=result.deleted_bytes,
            leftovers=result.leftovers,
        )
        return result

    async def _referenced(self, digests: list[str]) -> set[str]:
        """The digests any attachment row of any tenant names."""
        if not digests:
            return set()
        async with UnitOfWork(self.database) as uow:
            found = await uow.session.scalars(
                select(Attachment.sha256)
                .where(Attachment.sha256.in_(digests))
                .distinct()
                .execution_options(**{ALL_TENANTS: True})
            )
            return set(found.all())


def _next_batch(listing: Iterator[BlobInfo]) -> list[BlobInfo]:
    return list(islice(listing, BATCH))

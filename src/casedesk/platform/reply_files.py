"""The files of a reply, read from the blob store for the channel that sends them.

A reply carries its comment's files (``Reply.attachments``). Their total is weighed before a
byte is read: over the limit (``CASEDESK_ATTACHMENT_MAX_BYTES``, the same as for one upload)
the delivery fails at once with the files named, rather than sending a message the provider
would refuse. A file whose bytes are gone from the store fails it the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from casedesk.domain.channels import ReplyFile
from casedesk.integrations.mail import OutgoingFile
from casedesk.platform.runner import StepFailed
from casedesk.store.blobs import BlobStore


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"


def named(files: Sequence[ReplyFile]) -> str:
    """``a.pdf (2.0 MiB), b.png (12.3 KiB)``."""
    return ", ".join(f"{file.filename} ({_size(file.size)})" for file in files)


def check_total(files: Sequence[ReplyFile], *, limit: int) -> None:
    """Raise a final ``StepFailed`` naming the files when together they exceed ``limit``."""
    total = sum(file.size for file in files)
    if total > limit:
        raise StepFailed(
            f"the reply's files take {_size(total)} together, more than the {_size(limit)} a "
            f"reply may carry (CASEDESK_ATTACHMENT_MAX_BYTES): {named(files)}; send them in "
            "several replies or share them another way",
            final=True,
        )


async def load(blobs: BlobStore, files: Sequence[ReplyFile], *, limit: int) -> list[OutgoingFile]:
    """The files' bytes, in order, once their total is known to be within ``limit``."""
    check_total(files, limit=limit)
    loaded = []
    for file in files:
        try:
            content = await asyncio.to_thread(blobs.read, file.sha256)
        except FileNotFoundError:
            raise StepFailed(
                f"the file {file.filename!r} of this reply is no longer stored", final=True
            ) from None
        loaded.append(OutgoingFile(file.filename, file.content_type, content))
    return loaded

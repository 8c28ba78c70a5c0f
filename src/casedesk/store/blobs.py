"""Where the bytes of attachments live: one interface, content addressed by SHA-256.

A blob's key is its digest laid out as ``ab/cd/abcdef…``: the same bytes stored twice are
kept once, and rows of every tenant that carry that digest share the file. The stores are
synchronous (file or socket I/O); callers run them in a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK_BYTES = 1024 * 1024
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class BlobTooLarge(Exception):
    """The stream went on past the limit it was read with; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class StoredBlob:
    sha256: str
    size: int
    created: bool
    """True when these bytes were not in the store before."""


def blob_key(sha256: str) -> str:
    """The relative path of a digest: ``ab/cd/abcd…`` (two levels keep folders small)."""
    if not _DIGEST.match(sha256):
        raise ValueError(f"{sha256!r} is not a lowercase hex SHA-256 digest")
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


class BlobStore(ABC):
    @abstractmethod
    def put(self, source: BinaryIO, *, limit: int | None = None) -> StoredBlob:
        """Store what ``source`` reads to its end; raise ``BlobTooLarge`` (keeping nothing)
        when it holds more than ``limit`` bytes."""

    @abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """The blob for reading; ``FileNotFoundError`` when it is not stored."""

    @abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove the blob; removing one that is not there is no error."""

    def open_at(self, sha256: str, start: int) -> BinaryIO:
        """The blob for reading from byte ``start`` on (a download's ``Range``)."""
        source = self.open(sha256)
        source.seek(start)
        return source

    def read(self, sha256: str) -> bytes:
        with self.open(sha256) as blob:
            return blob.read()

    def chunks(self, sha256: str) -> Iterator[bytes]:
        """The blob in pieces of ``CHUNK_BYTES``, for streaming a download."""
        with self.open(sha256) as blob:
            while chunk := blob.read(CHUNK_BYTES):
                yield chunk


class LocalBlobStore(BlobStore):
    """Blobs as files under one folder, made on the first write. A write goes to a temporary
    file in the same folder and is renamed into place: a reader never sees half a blob."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sha256: str) -> Path:
        return self.root / blob_key(sha256)

    def put(self, source: BinaryIO, *, limit: int | None = None) -> StoredBlob:
        incoming = self.root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        handle, temporary = tempfile.mkstemp(dir=incoming, prefix="blob-")
        try:
            with os.fdopen(handle, "wb") as target:
                while chunk := source.read(CHUNK_BYTES):
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise BlobTooLarge(limit)
                    digest.update(chunk)
                    target.write(chunk)
                target.flush()
                os.fsync(target.fileno())
            sha256 = digest.hexdigest()
            final = self.path_of(sha256)
            if final.exists():
                return StoredBlob(sha256, size, created=False)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, final)
            return StoredBlob(sha256, size, created=True)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        return self.path_of(sha256).open("rb")

    def delete(self, sha256: str) -> None:
        self.path_of(sha256).unlink(missing_ok=True)

"""Where the bytes of attachments live: one interface, content addressed by SHA-256.

A blob's key is its digest laid out as ``ab/cd/abcdef…``: the same bytes stored twice are
kept once, and rows of every tenant that carry that digest share the file. The stores are
synchronous (file or socket I/O); callers run them in a worker thread.

Storing bytes that are there already makes the blob new again (its modification time is
now): the blob sweep (``store/blob_sweep.py``) never deletes a blob written within its grace
period, so an upload whose row is not committed yet keeps its bytes, also when they were
stored long before by someone else.
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
from datetime import UTC, datetime
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


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A stored blob as a listing shows it."""

    sha256: str
    size: int
    modified: datetime
    """When it was last written (or stored again)."""


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

    @abstractmethod
    def info(self, sha256: str) -> BlobInfo | None:
        """The blob's size and last write, or None when it is not stored."""

    @abstractmethod
    def listing(self) -> Iterator[BlobInfo]:
        """Every stored blob, in no particular order (what is added meanwhile may be
        missing)."""

    def leftovers(self, before: datetime) -> Iterator[BlobInfo]:
        """Temporary files of writes that never finished, last touched before ``before``
        (their ``sha256`` is their name); none in stores that write atomically."""
        return iter(())

    def delete_leftover(self, name: str) -> None:
        """Remove a temporary file ``leftovers`` named."""
        raise ValueError(f"{name!r} is not a temporary file of this store")

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
                os.utime(final)  # stored again: new for the sweep's grace period
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

    def info(self, sha256: str) -> BlobInfo | None:
        try:
            stat = self.path_of(sha256).stat()
        except FileNotFoundError:
            return None
        return BlobInfo(sha256, stat.st_size, _time(stat.st_mtime))

    def listing(self) -> Iterator[BlobInfo]:
        for first in _hex_folders(self.root):
            for second in _hex_folders(first):
                for path in second.iterdir():
                    if not _DIGEST.match(path.name) or not path.name.startswith(
                        first.name + second.name
                    ):
                        continue
                    try:
                        stat = path.stat()
                    except FileNotFoundError:  # deleted meanwhile
                        continue
                    yield BlobInfo(path.name, stat.st_size, _time(stat.st_mtime))

    def leftovers(self, before: datetime) -> Iterator[BlobInfo]:
        incoming = self.root / "incoming"
        if not incoming.is_dir():
            return
        for path in incoming.iterdir():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            modified = _time(stat.st_mtime)
            if path.name.startswith("blob-") and path.is_file() and modified < before:
                yield BlobInfo(path.name, stat.st_size, modified)

    def delete_leftover(self, name: str) -> None:
        if not name.startswith("blob-") or "/" in name or "\\" in name:
            raise ValueError(f"{name!r} is not a temporary file of this store")
        (self.root / "incoming" / name).unlink(missing_ok=True)


_HEX_PAIR = re.compile(r"^[0-9a-f]{2}$")


def _hex_folders(parent: Path) -> Iterator[Path]:
    if not parent.is_dir():
        return
    for child in sorted(parent.iterdir()):
        if _HEX_PAIR.match(child.name) and child.is_dir():
            yield child


def _time(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)

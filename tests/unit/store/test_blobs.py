"""The local blob store: content addressed, laid out in two levels, written atomically."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from casedesk.store.blobs import BlobTooLarge, LocalBlobStore, blob_key


def test_a_key_is_the_digest_in_two_levels() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert blob_key(digest) == f"{digest[:2]}/{digest[2:4]}/{digest}"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "AB" * 32, "ab" * 31, "zz" * 32])
def test_only_a_lowercase_digest_is_a_key(bad: str) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        blob_key(bad)


def test_bytes_are_stored_once_by_their_digest(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    content = b"hello " * 1000
    first = store.put(io.BytesIO(content))
    second = store.put(io.BytesIO(content))
    digest = hashlib.sha256(content).hexdigest()
    assert (first.sha256, first.size, first.created) == (digest, len(content), True)
    assert (second.sha256, second.created) == (digest, False)
    assert store.path_of(digest) == tmp_path / "blobs" / digest[:2] / digest[2:4] / digest
    assert store.read(digest) == content
    assert b"".join(store.chunks(digest)) == content
    assert store.exists(digest)
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert files == [store.path_of(digest)]


def test_a_stream_over_the_limit_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(BlobTooLarge):
        store.put(io.BytesIO(b"x" * 11), limit=10)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert store.put(io.BytesIO(b"x" * 10), limit=10).size == 10


def test_delete_removes_the_blob_and_tolerates_a_missing_one(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    stored = store.put(io.BytesIO(b"gone"))
    store.delete(stored.sha256)
    store.delete(stored.sha256)
    assert not store.exists(stored.sha256)
    with pytest.raises(FileNotFoundError):
        store.open(stored.sha256)

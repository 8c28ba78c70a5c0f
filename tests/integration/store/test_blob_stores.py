"""Every blob store keeps the same promises: bytes by their digest, once; a stream over its
limit leaves nothing; a missing blob is ``FileNotFoundError``. The S3 store is tested against
a local S3-compatible server (moto's)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from casedesk.store.blobs import BlobStore, BlobTooLarge, LocalBlobStore
from casedesk.store.blobs_s3 import S3BlobStore
from tests.support.s3 import S3Server


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    yield S3BlobStore(server.new_bucket(), "desk/blobs", client=server.client())


def _objects(store: BlobStore) -> list[str]:
    if isinstance(store, LocalBlobStore):
        root = store.root
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert isinstance(store, S3BlobStore)
    listed = store.client.list_objects_v2(Bucket=store.bucket)
    return sorted(item["Key"].removeprefix(store.prefix) for item in listed.get("Contents", []))


def test_bytes_are_kept_once_under_their_digest(store: BlobStore) -> None:
    content = b"hello " * 300_000  # more than one chunk
    digest = hashlib.sha256(content).hexdigest()
    first = store.put(io.BytesIO(content))
    second = store.put(io.BytesIO(content))
    assert (first.sha256, first.size, first.created) == (digest, len(content), True)
    assert (second.sha256, second.created) == (digest, False)
    assert _objects(store) == [f"{digest[:2]}/{digest[2:4]}/{digest}"]
    assert store.exists(digest)
    assert store.read(digest) == content
    assert b"".join(store.chunks(digest)) == content


def test_a_stream_over_the_limit_leaves_nothing(store: BlobStore) -> None:
    with pytest.raises(BlobTooLarge):
        store.put(io.BytesIO(b"x" * 11), limit=10)
    assert _objects(store) == []
    assert store.put(io.BytesIO(b"x" * 10), limit=10).size == 10


def test_a_missing_blob_is_not_found_and_deleting_it_twice_is_no_error(store: BlobStore) -> None:
    stored = store.put(io.BytesIO(b"gone soon"))
    store.delete(stored.sha256)
    store.delete(stored.sha256)
    assert not store.exists(stored.sha256)
    with pytest.raises(FileNotFoundError):
        store.open(stored.sha256)
    assert _objects(store) == []


def test_a_blob_reads_from_an_offset(store: BlobStore) -> None:
    stored = store.put(io.BytesIO(b"0123456789"))
    with store.open_at(stored.sha256, 4) as tail:
        assert tail.read() == b"456789"

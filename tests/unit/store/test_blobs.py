"""Blob keys: a digest laid out in two folder levels, and nothing else is a key. (The stores'
promises are tested on disk and on S3 in tests/integration/store/test_blob_stores.py.)"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from casedesk.store.blobs import LocalBlobStore, blob_key


def test_a_key_is_the_digest_in_two_levels() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert blob_key(digest) == f"{digest[:2]}/{digest[2:4]}/{digest}"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "AB" * 32, "ab" * 31, "zz" * 32])
def test_only_a_lowercase_digest_is_a_key(bad: str) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        blob_key(bad)


def test_a_local_blob_is_a_file_under_its_key_and_no_temporary_file_stays(
    tmp_path: Path,
) -> None:
    store = LocalBlobStore(tmp_path)
    stored = store.put(io.BytesIO(b"content"))
    digest = stored.sha256
    assert store.path_of(digest) == tmp_path / digest[:2] / digest[2:4] / digest
    assert list((tmp_path / "incoming").iterdir()) == []

"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2), under the same keys as on disk.

A write is spooled to a local temporary file while it is hashed, so its key (the digest) is
known before anything is sent; then one upload puts it there unless the key exists already.
S3 makes an object visible only once it is complete: a reader never sees half a blob. Needs
``boto3`` (the ``s3`` extra); credentials and region come from the usual ``AWS_*`` settings.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

from casedesk.store.blobs import (
    CHUNK_BYTES,
    BlobInfo,
    BlobStore,
    BlobTooLarge,
    StoredBlob,
    blob_key,
)

_MISSING = {"404", "NoSuchKey", "NotFound"}
_KEY = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})$")


class S3BlobStore(BlobStore):
    def __init__(self, bucket: str, prefix: str = "", *, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None) -> S3BlobStore:
        """``s3://bucket/prefix``; ``endpoint_url`` for a store other than AWS."""
        import boto3

        parts = urlsplit(url)
        client = boto3.client("s3", endpoint_url=endpoint_url)
        return cls(parts.netloc, parts.path, client=client)

    def key_of(self, sha256: str) -> str:
        return self.prefix + blob_key(sha256)

    def put(self, source: BinaryIO, *, limit: int | None = None) -> StoredBlob:
        digest, size = hashlib.sha256(), 0
        with tempfile.SpooledTemporaryFile(max_size=CHUNK_BYTES) as spooled:
            while chunk := source.read(CHUNK_BYTES):
                size += len(chunk)
                if limit is not None and size > limit:
                    raise BlobTooLarge(limit)
                digest.update(chunk)
                spooled.write(chunk)
            sha256 = digest.hexdigest()
            if self.exists(sha256):
                self._touch(sha256)
                return StoredBlob(sha256, size, created=False)
            spooled.seek(0)
            self.client.upload_fileobj(spooled, self.bucket, self.key_of(sha256))
        return StoredBlob(sha256, size, created=True)

    def exists(self, sha256: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key_of(sha256))
        except Exception as exc:
            if _error_code(exc) in _MISSING:
                return False
            raise
        return True

    def open(self, sha256: str) -> BinaryIO:
        return self.open_at(sha256, 0)

    def open_at(self, sha256: str, start: int) -> BinaryIO:
        ranged = {"Range": f"bytes={start}-"} if start else {}
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key_of(sha256), **ranged)
        except Exception as exc:
            if _error_code(exc) in _MISSING:
                raise FileNotFoundError(self.key_of(sha256)) from None
            raise
        return cast(BinaryIO, answer["Body"])

    def delete(self, sha256: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key_of(sha256))

    def info(self, sha256: str) -> BlobInfo | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key_of(sha256))
        except Exception as exc:
            if _error_code(exc) in _MISSING:
                return None
            raise
        modified = head["LastModified"]
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=UTC)
        return BlobInfo(sha256, int(head["ContentLength"]), modified)

    def listing(self) -> Iterator[BlobInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents") or []:
                match = _KEY.match(str(item["Key"])[len(self.prefix) :])
                if match is None or not match.group(3).startswith(match.group(1) + match.group(2)):
                    continue
                modified = item["LastModified"]
                if modified.tzinfo is None:
                    modified = modified.replace(tzinfo=UTC)
                yield BlobInfo(match.group(3), int(item["Size"]), modified)

    def _touch(self, sha256: str) -> None:
        """Make the object's ``LastModified`` now: a copy onto itself (within the bucket, no
        bytes through casedesk), so the sweep's grace period counts from this write."""
        key = self.key_of(sha256)
        self.client.copy_object(
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": self.bucket, "Key": key},
            MetadataDirective="REPLACE",
        )


def _error_code(exc: Exception) -> str | None:
    """The S3 error code of a botocore ``ClientError`` (None for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code"))

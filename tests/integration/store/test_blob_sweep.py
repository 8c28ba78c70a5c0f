"""The blob sweep deletes the bytes no attachment row refers to any more, and only those
older than the grace period; a dry run deletes nothing. On the local folder and on an S3
bucket (moto's server), with the rows in SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from casedesk.cli import app
from casedesk.config import get_settings
from casedesk.kit.clock import utcnow
from casedesk.store.blob_sweep import BlobSweeper
from casedesk.store.blobs import BlobStore, LocalBlobStore
from casedesk.store.blobs_s3 import S3BlobStore
from casedesk.store.models import Attachment
from casedesk.worker.housekeeping import Housekeeping
from tests.support.cases import Desk
from tests.support.s3 import S3Server

GRACE = timedelta(hours=24)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    yield S3BlobStore(server.new_bucket(), "desk/blobs", client=server.client())


def _later() -> datetime:
    """A clock a day and more ahead: every blob written now is past the grace period."""
    return utcnow() + GRACE + timedelta(hours=1)


async def _upload(desk: Desk, case_id: str, *contents: bytes) -> None:
    response = await desk.http.post(
        f"/api/v1/cases/{case_id}/attachments",
        files=[
            ("files", (f"file-{n}.bin", c, "application/octet-stream"))
            for n, c in enumerate(contents)
        ],
        headers=desk.headers,
    )
    assert response.status_code == 201, response.text


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


async def test_only_unreferenced_blobs_past_the_grace_period_are_swept(
    desk: Desk, store: BlobStore
) -> None:
    container = desk.container
    container.blobs = store  # the uploads go to this store
    kept_file, shared, purged = (secrets.token_bytes(3000) for _ in range(3))
    keeper, gone = await desk.new_case(), await desk.new_case()
    await _upload(desk, keeper["id"], kept_file, shared)
    await _upload(desk, gone["id"], shared, purged)
    never_attached = store.put(io.BytesIO(secrets.token_bytes(1000)))  # a write whose row failed
    async with container.unit_of_work(desk.tenant.id) as uow:  # the case is purged
        await uow.begin_write()
        await uow.session.execute(
            delete(Attachment).where(Attachment.case_id == uuid.UUID(gone["id"]))
        )
        await uow.commit()
    everything = {_digest(kept_file), _digest(shared), _digest(purged), never_attached.sha256}
    assert {blob.sha256 for blob in store.listing()} == everything

    # Within the grace period nothing goes, referenced or not.
    now = BlobSweeper(container.database, store, grace=GRACE)
    fresh = await now.sweep()
    assert (fresh.examined, fresh.recent, fresh.deleted) == (4, 4, 0)

    # A dry run past it names what would go and deletes nothing.
    later = BlobSweeper(container.database, store, grace=GRACE, clock=_later)
    dry = await later.sweep(dry_run=True)
    assert sorted(dry.deleted_digests) == sorted([_digest(purged), never_attached.sha256])
    assert dry.deleted_bytes == 3000 + 1000
    assert dry.referenced == 2
    assert {blob.sha256 for blob in store.listing()} == everything

    swept = await later.sweep()
    assert sorted(swept.deleted_digests) == sorted(dry.deleted_digests)
    assert (swept.deleted, swept.deleted_bytes, swept.referenced) == (2, 4000, 2)
    assert {blob.sha256 for blob in store.listing()} == {_digest(kept_file), _digest(shared)}
    assert store.read(_digest(shared)) == shared
    again = await later.sweep()
    assert (again.examined, again.deleted) == (2, 0)


async def test_bytes_stored_again_are_new_for_the_grace_period(desk: Desk, tmp_path: Path) -> None:
    """An upload of bytes stored long ago, whose row is not committed yet, keeps them."""
    store = LocalBlobStore(tmp_path / "blobs")
    content = secrets.token_bytes(500)
    stored = store.put(io.BytesIO(content))
    long_ago = time.time() - 3 * 86400
    os.utime(store.path_of(stored.sha256), (long_ago, long_ago))
    sweeper = BlobSweeper(desk.container.database, store, grace=GRACE)
    assert store.put(io.BytesIO(content)).created is False  # the upload writes it again
    result = await sweeper.sweep()
    assert (result.recent, result.deleted) == (1, 0)
    assert store.exists(stored.sha256)
    info = store.info(stored.sha256)
    assert info is not None
    assert info.modified > datetime.now(UTC) - timedelta(minutes=5)


async def test_an_unfinished_write_s_temporary_file_is_swept_after_the_grace_period(
    desk: Desk, tmp_path: Path
) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    incoming = store.root / "incoming"
    incoming.mkdir(parents=True)
    old, new = incoming / "blob-old", incoming / "blob-new"
    old.write_bytes(b"x" * 10)
    new.write_bytes(b"y" * 10)
    long_ago = time.time() - 3 * 86400
    os.utime(old, (long_ago, long_ago))
    result = await BlobSweeper(desk.container.database, store, grace=GRACE).sweep()
    assert (result.leftovers, result.leftover_bytes) == (1, 10)
    assert not old.exists()
    assert new.exists()


def test_the_sweep_command_reports_and_a_dry_run_keeps_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    database = tmp_path / "desk.db"
    blobs = tmp_path / "blobs"
    monkeypatch.setenv("CASEDESK_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("CASEDESK_ATTACHMENTS_DIR", str(blobs))
    monkeypatch.setenv("CASEDESK_BLOB_SWEEP_GRACE_HOURS", "1")
    get_settings.cache_clear()  # the command reads these settings, and later ones theirs
    request.addfinalizer(get_settings.cache_clear)
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    store = LocalBlobStore(blobs)
    orphan = store.put(io.BytesIO(b"nobody's file" * 100))
    long_ago = time.time() - 7200
    os.utime(store.path_of(orphan.sha256), (long_ago, long_ago))

    dry = runner.invoke(app, ["attachments", "sweep", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 1 unreferenced file(s), 1.3 KiB" in dry.output
    assert store.exists(orphan.sha256)

    swept = runner.invoke(app, ["attachments", "sweep"])
    assert swept.exit_code == 0, swept.output
    assert "deleted 1 unreferenced file(s), 1.3 KiB" in swept.output
    assert not store.exists(orphan.sha256)


async def test_housekeeping_sweeps_the_blobs_once_per_interval(desk: Desk, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    orphan = store.put(io.BytesIO(secrets.token_bytes(100)))
    sweeper = BlobSweeper(desk.container.database, store, grace=GRACE, clock=_later)
    housekeeping = Housekeeping(
        desk.container.database, keep=None, blobs=sweeper, blob_every=timedelta(days=1)
    )
    assert await housekeeping.sweep_blobs_when_due() is True
    assert not store.exists(orphan.sha256)
    second = store.put(io.BytesIO(secrets.token_bytes(100)))
    assert await housekeeping.sweep_blobs_when_due() is False  # not a day since the last
    assert store.exists(second.sha256)

"""Attachments over the API: upload, list, read, download; limits, quota, sniffing, tenancy;
and the entry point the channels hand their files to."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from casedesk.activities.add_attachments import IncomingFile, store_attachments
from casedesk.activities.base import ActivityContext, Operator
from casedesk.app import create_app
from casedesk.bootstrap import Container, build
from casedesk.domain.attachments import Refusal
from casedesk.domain.identity.roles import Role
from casedesk.kit.tracing import new_trace
from casedesk.store.blobs_s3 import S3BlobStore
from tests.conftest import Tenants, settings_for
from tests.support.cases import Desk, make_desk
from tests.support.s3 import S3Server

LIMIT = 64 * 1024
QUOTA = 200 * 1024
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81"
    b"\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


@pytest.fixture(scope="module")
async def blob_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("blobs")


@pytest.fixture(scope="module")
async def small(backend_url: str, blob_root: Path) -> AsyncIterator[Container]:
    """A casedesk whose attachments may have 64 KiB each and 200 KiB per tenant."""
    container = build(
        settings_for(
            backend_url,
            api_key_touch_seconds=0,
            attachments_dir=str(blob_root / uuid.uuid4().hex),
            attachment_max_bytes=LIMIT,
            attachment_quota_bytes=QUOTA,
        )
    )
    yield container
    await container.close()


@pytest.fixture
async def desk(small: Container) -> AsyncIterator[Desk]:
    transport = httpx.ASGITransport(app=create_app(container=small), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://casedesk.test") as http:
        yield await make_desk(http, await Tenants(small).create(), small)


async def _upload(
    desk: Desk,
    case_id: str,
    *files: tuple[str, bytes, str],
    headers: dict[str, str] | None = None,
    **data: str,
) -> httpx.Response:
    return await desk.http.post(
        f"/api/v1/cases/{case_id}/attachments",
        files=[("files", file) for file in files],
        data=data,
        headers=headers or desk.headers,
    )


async def _uploaded(desk: Desk, *files: tuple[str, bytes, str], **data: str) -> list[Any]:
    case = await desk.new_case()
    response = await _upload(desk, case["id"], *files, **data)
    assert response.status_code == 201, response.text
    items: list[Any] = response.json()["items"]
    return items


def _blobs(container: Container) -> list[Path]:
    root = container.settings.attachments_path
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def _listed(desk: Desk, case_id: str) -> list[Any]:
    response = await desk.http.get(f"/api/v1/cases/{case_id}/attachments", headers=desk.headers)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def test_an_upload_downloads_as_the_same_bytes_with_its_sniffed_type(desk: Desk) -> None:
    case = await desk.new_case()
    response = await _upload(desk, case["id"], ("dot.png", PNG, "application/octet-stream"))
    assert response.status_code == 201, response.text
    (item,) = response.json()["items"]
    assert item["filename"] == "dot.png"
    assert (item["content_type"], item["declared_type"]) == (
        "image/png",
        "application/octet-stream",
    )
    assert (item["size"], item["sha256"]) == (len(PNG), hashlib.sha256(PNG).hexdigest())
    assert item["uploaded_by"]["type"] == "user"
    assert [a["id"] for a in await _listed(desk, case["id"])] == [item["id"]]
    read = await desk.http.get(f"/api/v1/attachments/{item['id']}", headers=desk.headers)
    assert read.json() == item

    download = await desk.http.get(item["content_url"], headers=desk.headers)
    assert download.status_code == 200
    assert download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-length"] == str(len(PNG))
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-security-policy"] == "sandbox"
    assert download.headers["content-disposition"].startswith('inline; filename="dot.png"')
    assert download.headers["etag"] == f'"{item["sha256"]}"'
    again = await desk.http.get(
        item["content_url"], headers=desk.headers | {"If-None-Match": download.headers["etag"]}
    )
    assert (again.status_code, again.content) == (304, b"")


async def test_the_same_file_twice_is_kept_once(desk: Desk, small: Container) -> None:
    content = b"the same report, " + uuid.uuid4().bytes
    before = len(_blobs(small))
    (first,) = await _uploaded(desk, ("a.txt", content, "text/plain"))
    (second,) = await _uploaded(desk, ("b.txt", content, "text/plain"))
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    assert len(_blobs(small)) == before + 1
    (path,) = [p for p in _blobs(small) if p.name == first["sha256"]]
    assert path.relative_to(small.settings.attachments_path).parts == (
        first["sha256"][:2],
        first["sha256"][2:4],
        first["sha256"],
    )
    for item in (first, second):
        download = await desk.http.get(item["content_url"], headers=desk.headers)
        assert download.content == content


async def test_another_tenants_case_and_attachments_are_404(desk: Desk, small: Container) -> None:
    (item,) = await _uploaded(desk, ("note.txt", b"private", "text/plain"))
    other = await Tenants(small).create()
    for url in (
        f"/api/v1/cases/{item['case_id']}/attachments",
        f"/api/v1/attachments/{item['id']}",
        item["content_url"],
    ):
        response = await desk.http.get(url, headers=other.headers)
        assert response.status_code == 404, (url, response.text)
    upload = await _upload(
        desk, item["case_id"], ("x.txt", b"x", "text/plain"), headers=other.headers
    )
    assert upload.status_code == 404, upload.text
    assert len(await _listed(desk, item["case_id"])) == 1
    unknown = await _upload(desk, str(uuid.uuid4()), ("x.txt", b"x", "text/plain"))
    assert unknown.status_code == 404


async def test_a_file_over_the_limit_is_413_and_nothing_is_stored(
    desk: Desk, small: Container
) -> None:
    case = await desk.new_case()
    before = _blobs(small)
    response = await _upload(
        desk,
        case["id"],
        ("small.txt", b"fits", "text/plain"),
        ("big.bin", b"\x00" * (LIMIT + 1), "application/octet-stream"),
    )
    assert response.status_code == 413, response.text
    problem = response.json()
    assert (problem["limit"], problem["size"], problem["filename"]) == (LIMIT, LIMIT + 1, "big.bin")
    assert problem["reason"] == "too_large"
    assert f"{LIMIT:,} bytes" in problem["detail"]
    assert f"{LIMIT + 1:,} bytes" in problem["detail"]
    assert await _listed(desk, case["id"]) == []
    assert _blobs(small) == before


async def test_a_body_beyond_the_upload_limit_is_refused_before_it_is_read(
    desk: Desk, small: Container
) -> None:
    case = await desk.new_case()
    response = await _upload(desk, case["id"], ("big.bin", b"\x01" * (2 * LIMIT + 70_000), "x/y"))
    assert response.status_code == 413, response.text
    assert response.json()["limit"] == LIMIT + 65_536
    assert await _listed(desk, case["id"]) == []


async def test_other_routes_keep_the_server_body_limit(desk: Desk) -> None:
    case = await desk.new_case()
    body = {"body": "x" * (small_body := 1_100_000), "public": False}
    response = await desk.http.post(
        f"/api/v1/cases/{case['id']}/comments", json=body, headers=desk.headers
    )
    assert small_body > 1_048_576
    assert response.status_code == 413


async def test_over_the_tenants_quota_is_413_and_nothing_is_stored(desk: Desk) -> None:
    chunk = LIMIT - 1024
    for n in range(3):
        await _uploaded(desk, (f"part{n}.bin", bytes([n + 1]) * chunk, "application/octet-stream"))
    case = await desk.new_case()
    response = await _upload(desk, case["id"], ("last.bin", b"\x09" * chunk, "x/y"))
    assert response.status_code == 413, response.text
    problem = response.json()
    assert (problem["reason"], problem["limit"], problem["size"]) == ("over_quota", QUOTA, chunk)
    assert "quota" in problem["detail"]
    assert await _listed(desk, case["id"]) == []


async def _tenant_limits(
    small: Container, desk: Desk, max_bytes: int | None, quota_bytes: int | None
) -> None:
    async with small.unit_of_work(desk.tenant.id) as uow:
        await uow.begin_write()
        tenant = await uow.tenants.get(desk.tenant.id)
        tenant.attachment_max_bytes, tenant.attachment_quota_bytes = max_bytes, quota_bytes
        await uow.commit()


async def _usage(desk: Desk) -> dict[str, Any]:
    response = await desk.http.get("/api/v1/attachments/usage", headers=desk.headers)
    assert response.status_code == 200, response.text
    usage: dict[str, Any] = response.json()
    return usage


async def test_a_tenant_s_own_limits_replace_the_deployment_s_and_others_keep_theirs(
    desk: Desk, small: Container
) -> None:
    assert await _usage(desk) == {"used_bytes": 0, "max_file_bytes": LIMIT, "quota_bytes": QUOTA}
    await _tenant_limits(small, desk, 10_000, 25_000)
    assert await _usage(desk) == {"used_bytes": 0, "max_file_bytes": 10_000, "quota_bytes": 25_000}
    case = await desk.new_case()
    refused = await _upload(desk, case["id"], ("a.bin", b"\x01" * 10_001, "x/y"))
    assert refused.status_code == 413, refused.text
    assert (refused.json()["reason"], refused.json()["limit"]) == ("too_large", 10_000)
    await _uploaded(desk, ("b.bin", b"\x02" * 9_000, "x/y"), ("c.bin", b"\x03" * 9_000, "x/y"))
    over = await _upload(desk, case["id"], ("d.bin", b"\x04" * 9_000, "x/y"))
    assert over.status_code == 413, over.text
    assert (over.json()["reason"], over.json()["limit"]) == ("over_quota", 25_000)
    assert (await _usage(desk))["used_bytes"] == 18_000

    # No quota of its own (0) lets it past the deployment's; its file limit cannot pass the
    # deployment's, which bounds every upload's body.
    await _tenant_limits(small, desk, 10 * LIMIT, 0)
    assert await _usage(desk) == {"used_bytes": 18_000, "max_file_bytes": LIMIT, "quota_bytes": 0}
    other = await make_desk(desk.http, await Tenants(small).create(), small)
    assert await _usage(other) == {"used_bytes": 0, "max_file_bytes": LIMIT, "quota_bytes": QUOTA}


async def test_html_is_served_as_a_download_never_inline(desk: Desk) -> None:
    (item,) = await _uploaded(desk, ("page.html", HTML, "text/html"))
    assert item["content_type"] == "text/html"
    download = await desk.http.get(item["content_url"], headers=desk.headers)
    assert download.content == HTML
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["content-security-policy"] == "sandbox"
    assert download.headers["x-content-type-options"] == "nosniff"


async def test_a_spoofed_type_is_sniffed_from_the_bytes(desk: Desk) -> None:
    (item,) = await _uploaded(desk, ("cat.png", HTML, "image/png"))
    assert (item["content_type"], item["declared_type"]) == ("text/html", "image/png")
    download = await desk.http.get(item["content_url"], headers=desk.headers)
    assert download.headers["content-type"].startswith("text/html")
    assert download.headers["content-disposition"].startswith("attachment;")


async def test_a_path_in_the_filename_is_dropped(desk: Desk) -> None:
    (item,) = await _uploaded(desk, ("../../etc/passwd", b"root:x:0:0", "text/plain"))
    assert item["filename"] == "passwd"
    (windows,) = await _uploaded(desk, ("C:\\Users\\ann\\report.txt", b"ok", "text/plain"))
    assert windows["filename"] == "report.txt"
    (unicode,) = await _uploaded(desk, ("Bericht März.txt", b"ok", "text/plain"))
    download = await desk.http.get(unicode["content_url"], headers=desk.headers)
    assert "filename*=UTF-8''Bericht%20M%C3%A4rz.txt" in download.headers["content-disposition"]


async def test_files_attach_to_a_comment_of_the_case(desk: Desk) -> None:
    case = await desk.new_case()
    added = await desk.http.post(
        f"/api/v1/cases/{case['id']}/comments",
        json={"body": "see the log", "public": False},
        headers=desk.headers,
    )
    comment_id = added.json()["comments"][-1]["id"]
    response = await _upload(
        desk, case["id"], ("log.txt", b"line 1\n", "text/plain"), comment_id=comment_id
    )
    assert response.status_code == 201, response.text
    assert response.json()["items"][0]["comment_id"] == comment_id
    detail = await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)
    assert [a["filename"] for a in detail.json()["comments"][-1]["attachments"]] == ["log.txt"]
    other_case = await desk.new_case()
    elsewhere = await _upload(
        desk, other_case["id"], ("log.txt", b"x", "text/plain"), comment_id=comment_id
    )
    assert elsewhere.status_code == 404, elsewhere.text


@pytest.mark.parametrize(
    ("data", "files", "field"),
    [
        ({"comment_id": "not-a-uuid"}, [("files", ("a.txt", b"a", "text/plain"))], "comment_id"),
        ({}, [("other", ("a.txt", b"a", "text/plain"))], "files"),
    ],
)
async def test_bad_uploads_are_422_naming_the_field(
    desk: Desk, data: dict[str, str], files: list[Any], field: str
) -> None:
    case = await desk.new_case()
    response = await desk.http.post(
        f"/api/v1/cases/{case['id']}/attachments", data=data, files=files, headers=desk.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


async def test_an_upload_leaves_an_action_record_and_an_event(desk: Desk) -> None:
    (item,) = await _uploaded(desk, ("dot.png", PNG, "image/png"))
    history = await desk.http.get(f"/api/v1/cases/{item['case_id']}/history", headers=desk.headers)
    (record,) = [r for r in history.json()["items"] if r["code"] == "attachment.add"]
    assert record["memo"]["attachments"] == [
        {"id": item["id"], "filename": "dot.png", "size": len(PNG)}
    ]
    events = await desk.events(type="attachment.added")
    (event,) = [e for e in events if e["data"]["attachment_id"] == item["id"]]
    assert event["data"]["content_type"] == "image/png"
    assert event["data"]["size"] == len(PNG)


async def test_the_channel_entry_point_keeps_the_other_files_when_one_is_refused(
    desk: Desk, small: Container
) -> None:
    case = await desk.new_case()
    added = await desk.http.post(
        f"/api/v1/cases/{case['id']}/comments",
        json={
            "body": "mail text",
            "public": True,
            "author": {"type": "customer", "email": "c@example.com"},
        },
        headers=desk.headers,
    )
    comment_id = uuid.UUID(added.json()["comments"][-1]["id"])
    files = [
        IncomingFile("=?utf-8?q?ignored?= report.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n"),
        IncomingFile("huge.zip", "application/zip", b"PK\x03\x04" + b"\x00" * LIMIT),
        IncomingFile("logo.png", "image/png", PNG, content_id="logo@mail", inline=True),
    ]
    async with small.unit_of_work(desk.tenant.id) as uow:
        context = ActivityContext(
            uow=uow,
            operator=Operator("connector", "mail", "mail"),
            tenant_id=desk.tenant.id,
            edition="standard",
            extensions=small.extensions,
            trace=new_trace(),
        )
        outcome = await store_attachments(
            context, small.blobs, small.attachment_limits, uuid.UUID(case["id"]), comment_id, files
        )
    assert [row.filename for row in outcome.added] == ["=?utf-8?q?ignored?= report.pdf", "logo.png"]
    assert [(r.filename, r.reason) for r in outcome.refused] == [("huge.zip", Refusal.TOO_LARGE)]
    listed = await _listed(desk, case["id"])
    assert [(a["content_type"], a["inline"], a["content_id"]) for a in listed] == [
        ("application/pdf", False, None),
        ("image/png", True, "logo@mail"),
    ]
    assert {a["comment_id"] for a in listed} == {str(comment_id)}
    assert {a["uploaded_by"]["type"] for a in listed} == {"connector"}
    history = await desk.http.get(f"/api/v1/cases/{case['id']}/history", headers=desk.headers)
    (record,) = [r for r in history.json()["items"] if r["code"] == "attachment.add"]
    assert record["memo"]["refused"] == [
        {"filename": "huge.zip", "size": LIMIT + 4, "reason": "too_large"}
    ]
    detail = await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)
    assert detail.json()["comments"][-1]["body"] == "mail text"
    shown = detail.json()["comments"][-1]["attachments"]
    assert [a["filename"] for a in shown] == ["=?utf-8?q?ignored?= report.pdf", "logo.png"]


@pytest.mark.backends("sqlite")
async def test_26_mib_over_the_default_25_mib_limit_is_413(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    desk = await make_desk(client, await tenants.create(), tenants.container)
    case = await desk.new_case()
    assert desk.container.settings.attachment_max_bytes == 25 * 1024 * 1024
    size = 26 * 1024 * 1024
    declared = await _upload(desk, case["id"], ("big.bin", b"\x00" * size, "x/y"))
    assert declared.status_code == 413, declared.text
    assert declared.json()["size"] > size

    async def stream() -> AsyncIterator[bytes]:
        boundary = b"--cut\r\n"
        yield boundary + b'Content-Disposition: form-data; name="files"; filename="big.bin"\r\n\r\n'
        for _ in range(26):
            yield b"\x00" * (1024 * 1024)
        yield b"\r\n--cut--\r\n"

    streamed = await client.post(
        f"/api/v1/cases/{case['id']}/attachments",
        content=stream(),
        headers=desk.headers | {"Content-Type": "multipart/form-data; boundary=cut"},
    )
    assert streamed.status_code == 413, streamed.text
    assert await _listed(desk, case["id"]) == []


async def test_a_comment_takes_files_uploaded_before_and_the_detail_lists_them(
    desk: Desk,
) -> None:
    case = await desk.new_case()
    upload = await _upload(
        desk, case["id"], ("dot.png", PNG, "image/png"), ("notes.txt", b"n", "text/plain")
    )
    ids = [item["id"] for item in upload.json()["items"]]
    added = await desk.http.post(
        f"/api/v1/cases/{case['id']}/comments",
        json={"body": "two files", "public": False, "attachment_ids": ids},
        headers=desk.headers,
    )
    assert added.status_code == 201, added.text
    listed = added.json()["comments"][-1]["attachments"]
    assert [(a["id"], a["filename"], a["content_type"]) for a in listed] == [
        (ids[0], "dot.png", "image/png"),
        (ids[1], "notes.txt", "text/plain"),
    ]
    assert listed[0]["content_url"] == f"/api/v1/attachments/{ids[0]}/content"
    detail = await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)
    assert detail.json()["comments"][-1]["attachments"] == listed
    page = await desk.http.get(f"/api/v1/cases/{case['id']}/comments", headers=desk.headers)
    assert page.json()["items"][-1]["attachments"] == listed
    comment_id = added.json()["comments"][-1]["id"]
    assert {a["comment_id"] for a in await _listed(desk, case["id"])} == {comment_id}


async def test_a_comment_refuses_attachments_of_another_case_or_comment(desk: Desk) -> None:
    (elsewhere,) = await _uploaded(desk, ("a.txt", b"a", "text/plain"))
    case = await desk.new_case()
    (mine,) = [
        item
        for item in (await _upload(desk, case["id"], ("b.txt", b"b", "text/plain"))).json()["items"]
    ]
    url = f"/api/v1/cases/{case['id']}/comments"
    first = await desk.http.post(
        url,
        json={"body": "x", "public": False, "attachment_ids": [mine["id"]]},
        headers=desk.headers,
    )
    assert first.status_code == 201, first.text
    for attachment_id in (elsewhere["id"], mine["id"], str(uuid.uuid4())):
        response = await desk.http.post(
            url,
            json={"body": "y", "public": False, "attachment_ids": [attachment_id]},
            headers=desk.headers,
        )
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "attachment_ids"
    detail = await desk.http.get(f"/api/v1/cases/{case['id']}", headers=desk.headers)
    assert [c["body"] for c in detail.json()["comments"]] == ["x"]


async def test_a_viewer_may_download_but_not_upload(desk: Desk, small: Container) -> None:
    (item,) = await _uploaded(desk, ("a.txt", b"read me", "text/plain"))
    viewer = await Tenants(small).member(desk.tenant.id, Role.VIEWER)
    download = await desk.http.get(item["content_url"], headers=viewer.headers)
    assert download.content == b"read me"
    before = _blobs(small)
    new_bytes = b"never written " + uuid.uuid4().bytes
    refused = await _upload(
        desk, item["case_id"], ("b.txt", new_bytes, "text/plain"), headers=viewer.headers
    )
    assert refused.status_code == 403, refused.text
    assert _blobs(small) == before
    assert len(await _listed(desk, item["case_id"])) == 1


async def test_without_a_key_nothing_is_served(desk: Desk) -> None:
    (item,) = await _uploaded(desk, ("a.txt", b"secret", "text/plain"))
    assert (await desk.http.get(item["content_url"])).status_code == 401


@pytest.fixture
async def s3_desk(
    backend_url: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Desk]:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    bucket = s3_server.new_bucket()
    container = build(
        settings_for(
            backend_url,
            api_key_touch_seconds=0,
            blob_url=f"s3://{bucket}/attachments",
            blob_endpoint_url=s3_server.endpoint_url,
        )
    )
    transport = httpx.ASGITransport(app=create_app(container=container), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://casedesk.test") as http:
        yield await make_desk(http, await Tenants(container).create(), container)
    await container.close()


@pytest.mark.backends("sqlite")
async def test_attachments_round_trip_through_an_s3_bucket(
    s3_desk: Desk, s3_server: S3Server
) -> None:
    (item,) = await _uploaded(s3_desk, ("dot.png", PNG, "image/png"))
    download = await s3_desk.http.get(item["content_url"], headers=s3_desk.headers)
    assert download.content == PNG
    part = await s3_desk.http.get(
        item["content_url"], headers=s3_desk.headers | {"Range": "bytes=1-3"}
    )
    assert (part.status_code, part.content) == (206, PNG[1:4])
    assert download.headers["content-disposition"].startswith("inline;")
    blobs = s3_desk.container.blobs
    assert isinstance(blobs, S3BlobStore)
    listed = s3_server.client().list_objects_v2(Bucket=blobs.bucket)
    digest = item["sha256"]
    assert [o["Key"] for o in listed["Contents"]] == [
        f"attachments/{digest[:2]}/{digest[2:4]}/{digest}"
    ]


async def test_bytes_missing_from_the_store_are_a_404_not_a_server_error(
    desk: Desk, small: Container
) -> None:
    content = b"soon gone " + uuid.uuid4().bytes
    (item,) = await _uploaded(desk, ("gone.txt", content, "text/plain"))
    small.blobs.delete(item["sha256"])
    response = await desk.http.get(item["content_url"], headers=desk.headers)
    assert response.status_code == 404, response.text
    assert "missing" in response.json()["detail"]


async def test_a_range_downloads_part_of_the_file(desk: Desk) -> None:
    content = bytes(range(256)) * 8
    (item,) = await _uploaded(desk, ("part.bin", content, "application/octet-stream"))
    url, headers = item["content_url"], desk.headers
    whole = await desk.http.get(url, headers=headers)
    assert whole.headers["accept-ranges"] == "bytes"
    part = await desk.http.get(url, headers=headers | {"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(content)}"
    assert part.headers["content-length"] == "100"
    tail = await desk.http.get(url, headers=headers | {"Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, content[-10:])
    beyond = await desk.http.get(url, headers=headers | {"Range": f"bytes={len(content)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(content)}"
    several = await desk.http.get(url, headers=headers | {"Range": "bytes=0-1,5-6"})
    assert (several.status_code, several.content) == (200, content)

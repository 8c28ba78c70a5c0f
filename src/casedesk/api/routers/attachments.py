"""Attachments: upload to a case (multipart), list a case's, read one, download its bytes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Header, Request, Response, status
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.responses import StreamingResponse

from casedesk.activities.add_attachments import (
    IncomingFile,
    plan_attachments,
    store_planned,
)
from casedesk.api import API_V1
from casedesk.api.deps import ActivityContextDep, ContainerDep, PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.domain.attachments import RangeNotSatisfiable, byte_range, download_headers
from casedesk.kit.errors import InvalidInput, NotFound
from casedesk.store.blobs import CHUNK_BYTES, BlobStore
from casedesk.store.models import Attachment

router = APIRouter(prefix=API_V1, tags=["attachments"], route_class=ApiRoute)

UPLOAD_PATH = re.compile(r"^/api/v1/cases/[^/]+/attachments/?$")
"""The upload route, which takes bodies up to the attachment limit (``api.middleware``)."""
UPLOAD_OVERHEAD_BYTES = 65_536
"""What an upload's body may carry beyond its files: the multipart boundaries and headers,
``comment_id``."""
MAX_FILES = 100


class Uploader(BaseModel):
    type: str
    id: str | None
    name: str | None


class AttachmentView(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    comment_id: uuid.UUID | None
    filename: str
    content_type: str
    declared_type: str | None
    size: int
    sha256: str
    inline: bool
    content_id: str | None
    uploaded_by: Uploader
    created_at: datetime
    content_url: str


class RefusedView(BaseModel):
    filename: str
    size: int
    reason: str
    detail: str


class AttachmentPage(BaseModel):
    items: list[AttachmentView]


class UploadOutcome(AttachmentPage):
    refused: list[RefusedView] = []
    """Empty, unless the tenant's quota filled up between the check and the write."""


def attachment_view(row: Attachment) -> AttachmentView:
    return AttachmentView(
        id=row.id,
        case_id=row.case_id,
        comment_id=row.comment_id,
        filename=row.filename,
        content_type=row.content_type,
        declared_type=row.declared_type,
        size=row.size,
        sha256=row.sha256,
        inline=row.inline,
        content_id=row.content_id,
        uploaded_by=Uploader(
            type=row.uploaded_by_type, id=row.uploaded_by_id, name=row.uploaded_by_name
        ),
        created_at=row.created_at,
        content_url=f"{API_V1}/attachments/{row.id}/content",
    )


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": MAX_FILES,
                        },
                        "comment_id": {"type": "string", "format": "uuid"},
                    },
                }
            }
        },
    }
}


@router.post(
    "/cases/{case_id}/attachments",
    response_model=UploadOutcome,
    status_code=status.HTTP_201_CREATED,
    summary="Upload files to a case or one of its comments (multipart `files`)",
    description="Each file may have up to `CASEDESK_ATTACHMENT_MAX_BYTES` (a larger one: 413,"
    " and none of the request's files is kept); its type is sniffed from its bytes.",
    openapi_extra=_UPLOAD_BODY,
)
async def upload(
    case_id: uuid.UUID, request: Request, context: ActivityContextDep, container: ContainerDep
) -> UploadOutcome:
    form = await request.form(max_files=MAX_FILES, max_fields=10)
    try:
        comment_id = _comment_id(form.get("comment_id"))
        files = [
            IncomingFile(item.filename, item.content_type, item.file)
            for item in form.getlist("files")
            if isinstance(item, UploadFile)
        ]
        if not files:
            raise InvalidInput(
                "send one or more files as the multipart field `files`", field="files"
            )
        limits = container.attachment_limits
        plan = await plan_attachments(context, limits, case_id, comment_id, files)
        if plan.refused:
            raise plan.refused[0].error()
        outcome = await store_planned(context, container.blobs, plan)
    finally:
        await form.close()
    return UploadOutcome(
        items=[attachment_view(row) for row in outcome.added],
        refused=[
            RefusedView(filename=r.filename, size=r.size, reason=r.reason.value, detail=r.detail)
            for r in outcome.refused
        ],
    )


def _comment_id(value: object) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(
            "comment_id must be a comment's id (a UUID)", field="comment_id"
        ) from None


@router.get(
    "/cases/{case_id}/attachments",
    response_model=AttachmentPage,
    summary="A case's attachments, oldest first",
)
async def list_attachments(case_id: uuid.UUID, uow: UnitOfWorkDep) -> AttachmentPage:
    await uow.cases.get(case_id)
    rows = await uow.attachments.of_case(case_id)
    return AttachmentPage(items=[attachment_view(row) for row in rows])


class AttachmentUsage(BaseModel):
    used_bytes: int
    """What the tenant's attachments add up to (what counts against the quota)."""
    max_file_bytes: int
    """The largest file the tenant may attach."""
    quota_bytes: int
    """What its attachments may add up to; 0: no quota."""


@router.get(
    "/attachments/usage",
    response_model=AttachmentUsage,
    summary="The tenant's attachment limits and what its files use of the quota",
)
async def usage(
    principal: PrincipalDep, uow: UnitOfWorkDep, container: ContainerDep
) -> AttachmentUsage:
    tenant = await uow.tenants.get(principal.tenant_id)
    limits = container.attachment_limits.for_tenant(
        tenant.attachment_max_bytes, tenant.attachment_quota_bytes
    )
    return AttachmentUsage(
        used_bytes=await uow.attachments.used_bytes(),
        max_file_bytes=limits.max_bytes,
        quota_bytes=limits.quota_bytes,
    )


@router.get("/attachments/{attachment_id}", response_model=AttachmentView)
async def read(attachment_id: uuid.UUID, uow: UnitOfWorkDep) -> AttachmentView:
    return attachment_view(await uow.attachments.get(attachment_id))


@router.get(
    "/attachments/{attachment_id}/content",
    summary="The attachment's bytes (saved, not shown, except PNG, JPEG, GIF and WebP)",
    description="`If-None-Match` with the ETag → 304; one `Range: bytes=a-b` → 206.",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {}, 304: {}, 416: {}},
)
async def content(
    attachment_id: uuid.UUID,
    uow: UnitOfWorkDep,
    container: ContainerDep,
    if_none_match: Annotated[str | None, Header()] = None,
    requested: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    row = await uow.attachments.get(attachment_id)
    return await download(row, container.blobs, if_none_match, requested)


async def download(
    row: Attachment, blobs: BlobStore, if_none_match: str | None, range_header: str | None
) -> Response:
    """The response of an attachment's bytes: 304 when the caller has them (same ETag),
    206 with the part one ``Range`` asks for, 416 for a range beyond the file."""
    headers = download_headers(row.content_type, row.filename, row.sha256, row.size)
    if if_none_match is not None and headers["ETag"] in _tags(if_none_match):
        kept = ("ETag", "Cache-Control", "X-Content-Type-Options", "Content-Security-Policy")
        return Response(status_code=304, headers={name: headers[name] for name in kept})
    try:
        wanted = byte_range(range_header, row.size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{row.size}"})
    start, end = wanted if wanted is not None else (0, row.size - 1)
    try:
        source = await anyio.to_thread.run_sync(blobs.open_at, row.sha256, start)
    except FileNotFoundError:
        raise NotFound(f"the content of attachment {row.id} is missing from the store") from None

    def chunks() -> Iterator[bytes]:
        left = end - start + 1
        with source:
            while left > 0 and (chunk := source.read(min(CHUNK_BYTES, left))):
                left -= len(chunk)
                yield chunk

    media_type = headers.pop("Content-Type")
    if wanted is None:
        return StreamingResponse(chunks(), media_type=media_type, headers=headers)
    headers |= {
        "Content-Range": f"bytes {start}-{end}/{row.size}",
        "Content-Length": str(end - start + 1),
    }
    return StreamingResponse(chunks(), status_code=206, media_type=media_type, headers=headers)


def _tags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}

"""An attachment's bytes on the screens: the links and thumbnails of the workbench's case
page (for the signed-in person) and of the portal's (``web.portal``, for the customer).

Served as the API serves them (``domain.attachments.download_headers``): only PNG, JPEG,
GIF and WebP are shown in place; everything else is saved, sandboxed, never sniffed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from casedesk.domain.attachments import download_headers
from casedesk.store.blobs import CHUNK_BYTES
from casedesk.store.models import Attachment
from casedesk.web.pages import Viewer, render
from casedesk.web.session import container_of, person, tenant_work

router = APIRouter(include_in_schema=False)
PersonDep = Annotated[Viewer, Depends(person)]
NO_SUCH_ATTACHMENT = "no such attachment"


async def attachment_response(request: Request, row: Attachment) -> Response | None:
    """The attachment's bytes, streamed; None when its blob is missing from the store."""
    blobs = container_of(request).blobs
    try:
        source = await anyio.to_thread.run_sync(blobs.open, row.sha256)
    except FileNotFoundError:
        return None

    def chunks() -> Iterator[bytes]:
        with source:
            while chunk := source.read(CHUNK_BYTES):
                yield chunk

    headers = download_headers(row.content_type, row.filename, row.sha256, row.size)
    media_type = headers.pop("Content-Type")
    return StreamingResponse(chunks(), media_type=media_type, headers=headers)


@router.get("/app/attachments/{attachment_id}")
async def attachment_content(
    request: Request, attachment_id: uuid.UUID, viewer: PersonDep
) -> Response:
    async with tenant_work(request, viewer) as uow:
        row = await uow.attachments.find(attachment_id)
    response = None if row is None else await attachment_response(request, row)
    if response is None:
        return render(request, viewer, "message.html", status=404, message=NO_SUCH_ATTACHMENT)
    return response

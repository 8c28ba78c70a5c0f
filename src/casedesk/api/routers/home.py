"""Where a person who opens the server in a browser lands: the API's docs, for now."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import RedirectResponse

from casedesk.api.routing import ApiRoute

router = APIRouter(route_class=ApiRoute)


@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    # A redirect the browser may not cache: the workbench will take this address.
    return RedirectResponse("/docs", status_code=307)

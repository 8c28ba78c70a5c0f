from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from casedesk.api.deps import ContainerDep
from casedesk.api.routing import ApiRoute
from casedesk.kit.metrics import render_latest
from casedesk.store.probes import ping_broker, ping_redis

router = APIRouter(tags=["operations"], route_class=ApiRoute)


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(name: str, probe: Any) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, timeout=3.0)
    except Exception as exc:
        return name, f"unreachable: {type(exc).__name__}: {exc}"[:300]
    return name, "ok"


@router.get("/readyz", summary="The database, and Redis and the broker when configured, answer")
async def readyz(request: Request, container: ContainerDep) -> Response:
    settings = container.settings
    probes = [_check("database", container.database.ping())]
    if settings.redis_url:
        probes.append(_check("redis", ping_redis(settings.redis_url)))
    if settings.broker_url:
        probes.append(_check("broker", ping_broker(settings.broker_url)))
    checks = dict(await asyncio.gather(*probes))
    background = request.app.state.background
    if background is not None:
        stopped = background.stopped()
        checks["background"] = (
            "stopped: " + "; ".join(f"{loop} ({why})" for loop, why in stopped.items())
            if stopped
            else "ok"
        )
    ready = all(result == "ok" for result in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render_latest()
    return Response(body, media_type=content_type)

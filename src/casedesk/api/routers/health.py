from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import Gauge
from starlette.responses import JSONResponse, Response

from casedesk.api.deps import ContainerDep
from casedesk.api.routing import ApiRoute
from casedesk.domain.search.indexing import deployment_lag
from casedesk.kit.logging import get_logger
from casedesk.kit.metrics import render_latest
from casedesk.store.probes import ping_broker, ping_redis

router = APIRouter(tags=["operations"], route_class=ApiRoute)
log = get_logger(__name__)


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


SEARCH_LAG_EVENTS = Gauge(
    "casedesk_search_lag_events",
    "Case changes not yet in the search index (counted among the newest 1,000)",
    multiprocess_mode="max",
)
SEARCH_LAG_SECONDS = Gauge(
    "casedesk_search_lag_seconds",
    "Age of the oldest case change not yet in the search index",
    multiprocess_mode="max",
)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(container: ContainerDep) -> Response:
    try:
        async with container.unit_of_work() as uow:
            behind = await deployment_lag(uow)
    except Exception:  # the database away: the process's own metrics still answer
        log.warning("search lag not measured for /metrics", exc_info=True)
    else:
        SEARCH_LAG_EVENTS.set(behind.events)
        SEARCH_LAG_SECONDS.set(behind.seconds)
    body, content_type = render_latest()
    return Response(body, media_type=content_type)

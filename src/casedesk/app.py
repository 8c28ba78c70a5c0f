"""The ASGI application: ``create_app()`` for uvicorn, with the container built from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from casedesk import __version__
from casedesk.api import problems
from casedesk.api.middleware import BodyLimit, RequestContextMiddleware
from casedesk.api.routers import (
    api_keys,
    attachments,
    availability,
    cases,
    configuration,
    connections,
    connectors,
    dead_letters,
    events,
    executions,
    health,
    hooks,
    macros,
    mailboxes,
    me,
    notifications,
    portal,
    rules,
    sla,
    subscriptions,
    traces,
    users,
    views,
    webhooks,
    workflows,
)
from casedesk.bootstrap import Container, background, build, ensure_migrated, trace_work
from casedesk.config import Settings, get_settings
from casedesk.kit.logging import configure_logging
from casedesk.web import routes as web


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    settings = settings or (container.settings if container else get_settings())
    configure_logging(settings.log_level, settings.log_format)
    container = container or build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_migrated(container)
        work = None if settings.separate_workers else background(container)
        # Without a broker the trace queue lives in this process, so this process persists it.
        traces = trace_work(
            container, persist=not settings.separate_workers or settings.broker_url is None
        )
        await traces.start()
        if work is not None:
            await work.start()
        app.state.background = work
        yield
        if work is not None:
            await work.stop()
        await traces.stop()
        await container.close()

    # FastAPIOffline serves /docs and /redoc with the scripts it ships, not from a CDN.
    app = FastAPIOffline(
        title="casedesk",
        version=__version__,
        summary="Customer-service cases with a built-in integration platform",
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.background = None
    """This process's background work (``worker.runner.Background``), when it runs here."""
    problems.install(app)
    # The upload route takes what its files may have (and their form), and no more.
    upload_bytes = settings.attachment_max_bytes + attachments.UPLOAD_OVERHEAD_BYTES
    upload = BodyLimit("POST", attachments.UPLOAD_PATH, upload_bytes)
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, body_limits=[upload]
    )
    routers = (
        health,
        me,
        availability,
        users,
        portal,
        views,
        api_keys,
        configuration,
        cases,
        attachments,
        macros,
        mailboxes,
        notifications,
        events,
        dead_letters,
        rules,
        sla,
        webhooks,
        traces,
        workflows,
        executions,
        subscriptions,
        hooks,
    )
    for module in routers:
        app.include_router(module.router)
    app.include_router(rules.time_rules_router)
    app.include_router(hooks.ingress)
    app.include_router(connectors.router)
    app.include_router(connections.router)
    app.include_router(connections.oauth_router)
    web.install(app)
    return app

"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline

from patron import __version__
from patron.api import mount_routes
from patron.config import Settings, get_settings
from patron.context import AppContext, build_context
from patron.http.idempotency import replay_response
from patron.http.middleware import (
    BodyLimitMiddleware,
    CamelCaseQueryMiddleware,
    IdempotencyMiddleware,
    RequestContextMiddleware,
)
from patron.http.openapi import install_openapi, operation_id
from patron.http.problems import install_handlers
from patron.idempotency.service import IdempotentReplay
from patron.logging import configure_logging
from patron.ops.metrics import POOL
from patron.processes import api_services, relay_services, run_supervised, worker_services

log = structlog.get_logger("patron.app")

# How long shutdown waits for background services to finish their current round.
BACKGROUND_STOP_SECONDS = 10.0

DESCRIPTION = """
Patron is the one source of truth for a business's customers.

Authenticate with `Authorization: Bearer <JWT>` or `X-API-Key` (the **Authorize** button).
Platform credentials choose a tenant with `X-Tenant-Id`. Errors are RFC 9457 problem
details (`application/problem+json`). Every response carries `X-Trace-Id`.
"""

# Swagger UI and ReDoc load their scripts and styles from the service itself (the assets
# fastapi-offline ships), not from a CDN: the docs work offline and behind a strict CSP.
DOCS_STATIC_URL = "/docs/static"


def _telemetry(settings: Settings) -> TelemetryConfig:
    """FastAPI's native OpenTelemetry configuration: all of it on with ``OTEL_ENABLED``,
    all off otherwise (then FastAPI skips its per-request provider lookups)."""
    on = settings.otel_enabled
    return {"tracing": on, "metrics": on, "logs": on}


def create_app(
    settings: Settings | None = None,
    database_url: str | None = None,
    context: AppContext | None = None,
    *,
    background: bool = False,
) -> FastAPI:
    """Build the app. ``context`` (tests) or ``settings`` + ``database_url`` (servers).

    With ``background`` (``patron serve``) the app also runs the gRPC API, the relay, the
    webhook dispatcher and the event consumers (:mod:`patron.processes`) for as long as it serves;
    ``patron api`` leaves them to ``patron relay`` and ``patron worker``.
    The database must already be migrated; ``patron serve`` does that before calling this.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = context is None
        ctx = context or build_context(settings, database_url or settings.database_url or "")
        app.state.ctx = ctx
        POOL.pool = ctx.db.engine.pool
        stop = asyncio.Event()
        runner: asyncio.Task[None] | None = None
        if background:
            services = [*api_services(ctx), *relay_services(ctx), *worker_services(ctx)]
            runner = asyncio.create_task(run_supervised(services, stop), name="patron-background")
        try:
            yield
        finally:
            stop.set()
            if runner is not None:
                try:
                    await asyncio.wait_for(runner, timeout=BACKGROUND_STOP_SECONDS)
                except TimeoutError:
                    log.warning("background services did not stop in time; cancelled")
            if owned:
                await ctx.close()

    app = FastAPIOffline(
        title="Patron",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
        static_url=DOCS_STATIC_URL,
        generate_unique_id_function=operation_id,
        swagger_ui_parameters={"persistAuthorization": True},
        telemetry=_telemetry(settings),
    )
    if context is not None:
        app.state.ctx = context
        POOL.pool = context.db.engine.pool
    install_handlers(app)
    app.add_exception_handler(IdempotentReplay, replay_response)
    mount_routes(app)
    install_openapi(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(CamelCaseQueryMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag", "Location", "X-Trace-Id", "Retry-After"],
        )
    app.add_middleware(RequestContextMiddleware)
    configure_logging(settings.log_level)
    return app

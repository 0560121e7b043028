"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi.telemetry import TelemetryConfig
from sqlalchemy.exc import DBAPIError

from patron import __version__
from patron.api import mount_routes
from patron.config import Settings, get_settings
from patron.context import AppContext, build_context
from patron.errors import Conflict, InvalidInput, PatronError, install_handlers, problem_response
from patron.idempotency.service import IdempotentReplay
from patron.logging import configure_logging
from patron.ops.metrics import POOL
from patron.ops.middleware import (
    BodyLimitMiddleware,
    IdempotencyMiddleware,
    RequestContextMiddleware,
)
from patron.runtime import run_services
from patron.runtime.groups import relay_services, worker_services

log = structlog.get_logger("patron.app")

# How long shutdown waits for background services to finish their current round.
BACKGROUND_STOP_SECONDS = 10.0

DESCRIPTION = """
Patron is the one source of truth for a business's customers.

Authenticate with `Authorization: Bearer <JWT>` or `X-API-Key`. Platform credentials
choose a tenant with `X-Tenant-Id`. Errors are RFC 9457 problem details.
"""


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

    With ``background`` (``patron serve``) the app also runs the relay, the webhook
    dispatcher and the event consumers (``runtime.groups``) for as long as it serves;
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
            services = [*relay_services(ctx), *worker_services(ctx)]
            runner = asyncio.create_task(run_services(services, stop), name="patron-background")
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

    app = FastAPI(
        title="Patron",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
        telemetry=_telemetry(settings),
    )
    if context is not None:
        app.state.ctx = context
        POOL.pool = context.db.engine.pool
    install_handlers(app)
    app.add_exception_handler(IdempotentReplay, _on_replay)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(asyncpg.PostgresError, _on_database_error)
    mount_routes(app)
    app.add_middleware(IdempotencyMiddleware)
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


async def _on_replay(_: Request, exc: Exception) -> Response:
    exc = cast(IdempotentReplay, exc)
    return Response(
        content=exc.body,
        status_code=exc.status,
        headers={**exc.replay_headers, "Idempotent-Replayed": "true"},
    )


async def _on_database_error(_: Request, exc: Exception) -> Response:
    """Database errors caused by input (SQLSTATE class 22, 23505) are the client's; the rest 500.

    They arrive wrapped by SQLAlchemy (``DBAPIError``) or, from the prepared statements of
    :mod:`patron.db.fastpath`, straight from asyncpg (``asyncpg.PostgresError``).
    """
    orig: Any = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate: Any = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    if sqlstate == "23505":
        return problem_response(Conflict("a unique value is already in use").to_problem())
    if isinstance(sqlstate, str) and sqlstate.startswith("22"):
        return problem_response(
            InvalidInput(
                "a value cannot be stored (invalid characters or out of range)"
            ).to_problem()
        )
    log.error("database_error", sqlstate=sqlstate, error_type=type(orig).__name__)
    return problem_response(PatronError("An unexpected database error occurred.").to_problem())

"""Which background services each process runs, and the ``patron relay`` / ``patron worker``
processes themselves (a composition root, like :mod:`patron.app`).

``relay`` publishes: the outbox relay to RabbitMQ / Kafka and the webhook dispatcher.
``worker`` consumes: order and appointment events from RabbitMQ, and runs background jobs
(which need only PostgreSQL).
``patron serve`` runs both beside the HTTP API, and the gRPC API (``api_services``). A
service whose transport is not configured (no ``RABBITMQ_URL``, say) is left out.

Run apart, a relay or worker serves no API; with a probe port (``PROBE_PORT`` or
``--probe-port``, bound on ``HOST``) it answers ``/health``, ``/ready`` and ``/metrics``
(:mod:`patron.ops.probes`) from a small uvicorn server in the same event loop as its
services, so a stuck loop fails the liveness probe too.

It sits above the domain packages, which implement :class:`~patron.runtime.BackgroundService`
against :mod:`patron.runtime` below them; the supervisor never knows which services exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import structlog
import uvicorn
from fastapi import FastAPI

from patron.config import Settings
from patron.context import AppContext, build_context
from patron.grpc_api.server import GrpcService
from patron.http.problems import install_handlers
from patron.jobs.worker import build_job_services
from patron.ops import probes
from patron.ops.metrics import BACKGROUND_SERVICES
from patron.orders.consumer import build_consumer_services
from patron.relay.service import build_relay_services
from patron.runtime import BackgroundService, Supervision, run_services
from patron.webhooks.dispatcher import build_webhook_services

log = structlog.get_logger("patron.processes")

ServiceGroup = Callable[[AppContext], list[BackgroundService]]


def relay_services(ctx: AppContext) -> list[BackgroundService]:
    """The publishing side: outbox relay and webhook dispatcher."""
    return [*build_relay_services(ctx), *build_webhook_services(ctx)]


def api_services(ctx: AppContext) -> list[BackgroundService]:
    """What ``patron serve`` runs beside HTTP besides the relay and worker sides: the gRPC
    API on ``GRPC_PORT`` (``patron grpc`` runs it alone)."""
    return [GrpcService(ctx, host=ctx.settings.host, port=ctx.settings.grpc_port)]


def worker_services(ctx: AppContext) -> list[BackgroundService]:
    """The consuming side: order and appointment event consumers, and the job worker."""
    return [*build_consumer_services(ctx), *build_job_services(ctx)]


async def run_relay(
    settings: Settings,
    database_url: str,
    *,
    probe_port: int | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """``patron relay``: publish the outbox (and webhooks) until ``stop`` is set, or until
    SIGINT / SIGTERM when ``stop`` is not given. ``probe_port`` (default
    ``settings.probe_port``) serves the probes. Raises ``SystemExit`` with a one-line message
    when the probe port cannot be bound (in use, say)."""
    await _run_group(
        relay_services,
        settings,
        database_url,
        probe_port=probe_port,
        stop=stop,
        missing="set RABBITMQ_URL or KAFKA_BOOTSTRAP_SERVERS",
    )


async def run_worker(
    settings: Settings,
    database_url: str,
    *,
    probe_port: int | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """``patron worker``: run background jobs, and consume order and appointment events when
    ``RABBITMQ_URL`` is set, until ``stop`` is set (or SIGINT / SIGTERM); as
    :func:`run_relay` otherwise."""
    await _run_group(
        worker_services,
        settings,
        database_url,
        probe_port=probe_port,
        stop=stop,
        missing="set RABBITMQ_URL",
    )


async def _run_group(
    group: ServiceGroup,
    settings: Settings,
    database_url: str,
    *,
    probe_port: int | None,
    stop: asyncio.Event | None,
    missing: str,
) -> None:
    ctx = build_context(settings, database_url)
    try:
        services = group(ctx)
        if not services:
            print(f"nothing to run: {missing}")
            return
        supervision = Supervision(s.name for s in services)
        port = probe_port if probe_port is not None else settings.probe_port
        with _stop_on_signals(stop) as stopping:
            async with _probe_server(ctx, supervision, settings.host, port):
                await run_supervised(services, stopping, supervision)
    finally:
        await ctx.close()


async def run_supervised(
    services: list[BackgroundService],
    stop: asyncio.Event,
    supervision: Supervision | None = None,
) -> None:
    """Run ``services`` until ``stop`` is set, restarting any that crash, with their state
    reported in ``patron_background_service_*`` on ``/metrics`` meanwhile (``patron serve``
    runs them beside the API, ``patron relay`` / ``worker`` beside the probe port)."""
    supervision = supervision or Supervision(s.name for s in services)
    with _reported(supervision):
        await run_services(services, stop, supervision)


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event | None) -> Iterator[asyncio.Event]:
    """``stop`` as given, or a new event that SIGINT and SIGTERM set for the block."""
    if stop is not None:
        yield stop
        return
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stopping.set)
    try:
        yield stopping
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


@contextlib.contextmanager
def _reported(supervision: Supervision) -> Iterator[None]:
    """Report ``supervision`` in ``patron_background_service_*`` for the block."""
    BACKGROUND_SERVICES.source = supervision
    try:
        yield
    finally:
        BACKGROUND_SERVICES.source = None


class _EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves signals to the process: by default ``serve`` installs its own
    SIGINT / SIGTERM handlers and raises the signal again after its shutdown, which would
    end the process before its services stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def probe_app(target: probes.ProbeTarget) -> FastAPI:
    """The probe port's ASGI app: :mod:`patron.ops.probes` with problem+json errors, no
    OpenAPI document."""
    app = FastAPI(title="Patron probes", openapi_url=None, docs_url=None, redoc_url=None)
    install_handlers(app)
    app.include_router(probes.router)
    app.state.probe = target
    return app


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; ``SystemExit`` with one line if that fails."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise SystemExit(
            f"cannot listen on {host}:{port} for the probe port (PROBE_PORT, --probe-port): "
            f"{exc.strerror or exc}"
        ) from None


@contextlib.asynccontextmanager
async def _probe_server(
    ctx: AppContext, supervision: Supervision, host: str, port: int | None
) -> AsyncIterator[None]:
    """Serve the probes on ``host:port`` for the block (nothing when ``port`` is None). The
    socket is bound before the block starts, so a port in use fails the start."""
    if port is None:
        yield
        return
    sock = _listen(host, port)
    app = probe_app(probes.ProbeTarget(ctx.db.engine, ctx.settings, supervision))
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="off", log_config=None, access_log=False
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="patron-probe-port")
    try:
        log.info("probe port listening", host=host, port=port)
        yield
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            sock.close()

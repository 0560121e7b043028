"""The ``grpc.aio`` server of ``patron.v1.CustomerService``, with ``grpc.health.v1`` and
server reflection (API.md "gRPC").

Health (https://github.com/grpc/grpc/blob/master/doc/health-checking.md): the overall
service (``""``) and ``patron.v1.CustomerService`` are NOT_SERVING until the database
answers ``SELECT 1`` (checked at start, then once a second until it does), SERVING after,
and NOT_SERVING again from the moment shutdown begins, while calls in flight drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from patron.context import AppContext
from patron.grpc_api.access import SERVICE_NAME
from patron.grpc_api.interceptors import CallInterceptor
from patron.grpc_api.servicer import CustomerServicer
from patron.grpc_api.v1 import customers_pb2_grpc
from patron.ops.readiness import database_check, run_checks

log = structlog.get_logger("patron.grpc")

HEALTH_RETRY_SECONDS = 1.0
DEFAULT_GRACE_SECONDS = 10.0


class GrpcServer:
    """One gRPC server of the process's :class:`AppContext`, on ``host:port`` (port 0: a
    free one, read back from :attr:`port` after :meth:`start`)."""

    def __init__(self, app: AppContext, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.server = aio.server(interceptors=[CallInterceptor(app)])
        self.health = health.aio.HealthServicer()
        customers_pb2_grpc.add_CustomerServiceServicer_to_server(CustomerServicer(), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        self._health_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen; health turns SERVING once the database answers (in the background)."""
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.start()
        self._health_task = asyncio.create_task(self._watch_database())
        log.info("grpc.started", port=self.port)

    async def stop(self, grace: float | None = DEFAULT_GRACE_SECONDS) -> None:
        """Report NOT_SERVING, refuse new calls and let calls in flight finish for up to
        ``grace`` seconds (then cancel them)."""
        await self.health.enter_graceful_shutdown()
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        await self.server.stop(grace)
        log.info("grpc.stopped")

    async def wait(self) -> None:
        """Until the server has stopped."""
        await self.server.wait_for_termination()

    async def _watch_database(self) -> None:
        while True:
            healthy, _ = await run_checks({"database": database_check(self.app.db.engine)})
            if healthy:
                await self._set_health(health_pb2.HealthCheckResponse.SERVING)
                return
            await asyncio.sleep(HEALTH_RETRY_SECONDS)

    async def _set_health(self, status: int) -> None:
        for service in ("", SERVICE_NAME):
            await self.health.set(service, status)


class GrpcService:
    """The gRPC server as a supervised background service of ``patron serve``
    (:class:`patron.runtime.BackgroundService`): listens until ``stop`` is set, then drains
    for up to ``grace`` seconds (below the app's background stop limit)."""

    name = "grpc"

    def __init__(self, app: AppContext, *, host: str, port: int, grace: float = 5.0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.grace = grace

    async def run(self, stop: asyncio.Event) -> None:
        server = GrpcServer(self.app, host=self.host, port=self.port)
        await server.start()
        try:
            await stop.wait()
        finally:
            await server.stop(self.grace)


async def serve(app: AppContext, *, host: str, port: int, grace: float) -> None:
    """Run a :class:`GrpcServer` until SIGTERM or SIGINT, then stop it gracefully."""
    server = GrpcServer(app, host=host, port=port)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.stop(grace)

"""Health, reflection, the error table, and ``patron grpc`` as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from patron.context import AppContext
from patron.errors import (
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    InvalidInput,
    NotFound,
    PatronError,
    PreconditionFailed,
    RateLimited,
    Unauthorized,
)
from patron.grpc_api.access import METHODS, SERVICE_NAME
from patron.grpc_api.errors import status_for
from patron.grpc_api.interceptors import CallInterceptor
from patron.grpc_api.server import GrpcServer
from patron.grpc_api.v1 import customers_pb2, customers_pb2_grpc
from patron.ops.metrics import REGISTRY
from tests.services import free_port

PATRON = Path(sys.executable).with_name("patron")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _serving(channel: aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    for _ in range(100):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        if reply.status == SERVING:
            break
        await asyncio.sleep(0.05)
    return int(reply.status)


async def test_health_is_serving_once_the_database_answers(channel: aio.Channel) -> None:
    assert await _serving(channel) == SERVING
    assert await _serving(channel, SERVICE_NAME) == SERVING


async def test_health_is_not_serving_once_shutdown_begins(app_ctx: AppContext) -> None:
    server = GrpcServer(app_ctx, port=0)
    await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        assert await _serving(channel) == SERVING
        await server.health.enter_graceful_shutdown()
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == NOT_SERVING
    await server.stop(0)


async def test_reflection_lists_the_service(channel: aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names = set()
    async for reply in stub.ServerReflectionInfo(iter([request])):
        names |= {s.name for s in reply.list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names


def test_every_method_has_an_access_rule() -> None:
    methods = customers_pb2.DESCRIPTOR.services_by_name["CustomerService"].methods_by_name
    assert set(methods) == set(METHODS)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (Conflict("x"), grpc.StatusCode.ALREADY_EXISTS),
        (InvalidInput("x", loc=["f"]), grpc.StatusCode.INVALID_ARGUMENT),
        (Unauthorized("x"), grpc.StatusCode.UNAUTHENTICATED),
        (Forbidden("x"), grpc.StatusCode.PERMISSION_DENIED),
        (PreconditionFailed("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (RateLimited("x", retry_after=3), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (DatabaseUnavailable(), grpc.StatusCode.UNAVAILABLE),
        (PatronError("x"), grpc.StatusCode.INTERNAL),
    ],
)
def test_error_table(error: PatronError, code: grpc.StatusCode) -> None:
    status = status_for(error)
    assert status.code == code
    assert status.details == error.detail


def test_patron_grpc_serves_and_stops_on_sigterm(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "PATRON_ENV": "test"}
    err = tmp_path / "err"
    with err.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(PATRON), "grpc", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, err.read_text()
                assert time.monotonic() < deadline, err.read_text()
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if reply.status == SERVING:
                        break
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, err.read_text()


async def test_calls_are_counted_by_method_and_code(
    stub: Any, api_key_headers: Any, tenant: str
) -> None:
    def count(code: str) -> float:
        value = REGISTRY.get_sample_value(
            "patron_grpc_requests_total", {"method": "GetCustomer", "code": code}
        )
        return value or 0.0

    before = count("UNAUTHENTICATED")
    with pytest.raises(aio.AioRpcError):
        await stub.GetCustomer(customers_pb2.GetCustomerRequest(customer_id="x"))
    assert count("UNAUTHENTICATED") == before + 1


class _Broken(customers_pb2_grpc.CustomerServiceServicer):
    """A servicer with a bug: what the interceptor must not let out as UNKNOWN."""

    async def GetCustomer(self, request: Any, context: Any) -> Any:
        raise RuntimeError("secret detail that must not reach the client")


async def test_an_unexpected_exception_is_internal_not_unknown(
    app_ctx: AppContext, api_key_headers: Any, tenant: str
) -> None:
    server = aio.server(interceptors=[CallInterceptor(app_ctx)])
    customers_pb2_grpc.add_CustomerServiceServicer_to_server(_Broken(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    md = tuple((k.lower(), v) for k, v in (await api_key_headers("admin", tenant)).items())
    try:
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub: Any = customers_pb2_grpc.CustomerServiceStub(channel)
            with pytest.raises(aio.AioRpcError) as info:
                await stub.GetCustomer(
                    customers_pb2.GetCustomerRequest(customer_id="x"), metadata=md
                )
    finally:
        await server.stop(0)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (info.value.details() or "")

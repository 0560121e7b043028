"""A real ``grpc.aio`` server of the test process's AppContext on a free port, and a
client channel to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from grpc import aio

from patron.context import AppContext
from patron.grpc_api.server import GrpcServer
from patron.grpc_api.v1 import customers_pb2_grpc


@pytest.fixture(scope="session")
async def grpc_server(app_ctx: AppContext) -> AsyncIterator[GrpcServer]:
    server = GrpcServer(app_ctx, port=0)
    await server.start()
    yield server
    await server.stop(0)


@pytest.fixture(scope="session")
async def channel(grpc_server: GrpcServer) -> AsyncIterator[aio.Channel]:
    async with aio.insecure_channel(f"127.0.0.1:{grpc_server.port}") as chan:
        yield chan


@pytest.fixture(scope="session")
def stub(channel: aio.Channel) -> customers_pb2_grpc.CustomerServiceAsyncStub:
    return customers_pb2_grpc.CustomerServiceStub(channel)  # type: ignore[return-value]


def metadata(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """HTTP-style credential headers (``api_key_headers``, ``token_headers``) as gRPC
    metadata (lower-case keys)."""
    return tuple((k.lower(), v) for k, v in headers.items())

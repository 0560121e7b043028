"""``patron serve`` runs the gRPC API beside HTTP, on ``GRPC_PORT``."""

from __future__ import annotations

import asyncio

from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from patron.app import create_app
from patron.grpc_api.v1 import customers_pb2 as pb
from patron.grpc_api.v1 import customers_pb2_grpc
from tests.conftest import ApiKeyFactory, make_settings
from tests.grpc_api.conftest import metadata
from tests.services import free_port


async def test_serve_answers_grpc_beside_http(
    database_url: str, api_key_headers: ApiKeyFactory, tenant: str
) -> None:
    port = free_port()
    app = create_app(make_settings(grpc_port=port), database_url, background=True)
    md = metadata(await api_key_headers("admin", tenant))
    async with app.router.lifespan_context(app), aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for _ in range(100):
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("gRPC never became SERVING under patron serve")
        stub = customers_pb2_grpc.CustomerServiceStub(ch)
        created = await stub.UpsertCustomer(pb.UpsertCustomerRequest(psid="serve-1"), metadata=md)
        assert created.created

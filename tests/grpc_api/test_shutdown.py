"""A call during shutdown: in flight when the graceful stop begins, it completes; a new
call after that is refused (issue 12, "a call during shutdown").

The slow call is real: the test holds the customer's row lock (``SELECT ... FOR UPDATE``
in its own transaction) so ``BlockCustomer`` waits on PostgreSQL, not on a patched
function.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2

from patron.context import AppContext
from patron.db.urls import libpq_dsn
from patron.grpc_api.server import GrpcServer
from patron.grpc_api.v1 import customers_pb2 as pb
from patron.grpc_api.v1 import customers_pb2_grpc
from tests.grpc_api.conftest import metadata


async def _wait_for_lock_wait(conn: asyncpg.Connection) -> None:
    """Until another backend of this database waits on a lock (the blocked call)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.02)
    pytest.fail("the call never waited on the row lock")


async def _local_health(server: GrpcServer) -> int:
    """The health servicer's answer, asked in-process (the port may refuse calls now)."""
    reply = await server.health.Check(health_pb2.HealthCheckRequest(service=""), None)  # type: ignore[arg-type]
    return int(reply.status)


async def test_a_call_in_flight_completes_and_a_new_call_is_refused(
    app_ctx: AppContext, database_url: str, api_key_headers: Any, tenant: str
) -> None:
    server = GrpcServer(app_ctx, port=0)
    await server.start()
    address = f"127.0.0.1:{server.port}"
    md = metadata(await api_key_headers("admin", tenant))
    locker = await asyncpg.connect(libpq_dsn(database_url))
    try:
        async with aio.insecure_channel(address) as channel:
            stub: Any = customers_pb2_grpc.CustomerServiceStub(channel)
            created = await stub.UpsertCustomer(
                pb.UpsertCustomerRequest(email="drain@example.com"), metadata=md
            )
            customer_id = created.customer.id
            lock = locker.transaction()
            await lock.start()
            await locker.execute(
                "SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", created.customer.id
            )
            in_flight = asyncio.ensure_future(
                stub.BlockCustomer(
                    pb.BlockCustomerRequest(customer_id=customer_id), metadata=md, timeout=30
                )
            )
            await _wait_for_lock_wait(locker)

            stopping = asyncio.create_task(server.stop(grace=20))
            await asyncio.sleep(0.5)
            assert not in_flight.done()
            assert not stopping.done(), "stop did not wait for the call in flight"
            assert await _local_health(server) == health_pb2.HealthCheckResponse.NOT_SERVING

            async with aio.insecure_channel(address) as fresh:
                late: Any = customers_pb2_grpc.CustomerServiceStub(fresh)
                with pytest.raises(aio.AioRpcError) as refused:
                    await late.GetCustomer(
                        pb.GetCustomerRequest(customer_id=customer_id), metadata=md, timeout=5
                    )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

            await lock.rollback()
            blocked = await asyncio.wait_for(in_flight, 15)
            assert blocked.customer.status == pb.CUSTOMER_STATUS_BLOCKED
            await asyncio.wait_for(stopping, 15)
            await asyncio.wait_for(server.wait(), 5)
    finally:
        await locker.close()
        await server.stop(0)

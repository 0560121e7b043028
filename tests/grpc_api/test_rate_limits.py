"""Rate limits in the call interceptor: where ``RATE_LIMITS`` says, past the limit a call
is RESOURCE_EXHAUSTED with ``google.rpc.RetryInfo``; elsewhere calls are not counted."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc import aio
from grpc_status import rpc_status

from patron.config import Settings
from patron.context import AppContext
from patron.grpc_api.access import METHODS, RATE_LIMITS, RateLimit
from patron.grpc_api.interceptors import CallInterceptor
from patron.grpc_api.servicer import CustomerServicer
from patron.grpc_api.v1 import customers_pb2 as pb
from patron.grpc_api.v1 import customers_pb2_grpc
from tests.grpc_api.conftest import metadata


def test_the_table_names_real_methods_and_the_interceptor_reads_it(
    app_ctx: AppContext,
) -> None:
    assert set(RATE_LIMITS) <= set(METHODS)
    # no gRPC method corresponds to the one rate-limited HTTP route (PATCH, decision 0019)
    assert "UpdateCustomer" not in METHODS
    assert RATE_LIMITS == {}
    assert CallInterceptor(app_ctx).rate_limits is RATE_LIMITS


def _two_per_minute(settings: Settings) -> str:
    return "2/minute"


async def test_a_limited_method_is_resource_exhausted_with_retry_info(
    app_ctx: AppContext, api_key_headers: Any, tenant: str
) -> None:
    limits = {"GetCustomer": RateLimit(_two_per_minute, f"test_{uuid.uuid4().hex}")}
    server = aio.server(interceptors=[CallInterceptor(app_ctx, limits)])
    customers_pb2_grpc.add_CustomerServiceServicer_to_server(CustomerServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    md = metadata(await api_key_headers("admin", tenant))
    try:
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub: Any = customers_pb2_grpc.CustomerServiceStub(channel)
            created = await stub.UpsertCustomer(
                pb.UpsertCustomerRequest(email="limited@example.com"), metadata=md
            )
            get = pb.GetCustomerRequest(customer_id=created.customer.id)
            for _ in range(2):
                await stub.GetCustomer(get, metadata=md)
            with pytest.raises(aio.AioRpcError) as info:
                await stub.GetCustomer(get, metadata=md)
            # another customer has its own budget; an unlimited method is not counted
            other = pb.GetCustomerRequest(customer_id=str(uuid.uuid4()))
            with pytest.raises(aio.AioRpcError) as missing:
                await stub.GetCustomer(other, metadata=md)
            for _ in range(3):
                await stub.UpsertCustomer(
                    pb.UpsertCustomerRequest(email="limited@example.com"), metadata=md
                )
    finally:
        await server.stop(0)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    status = rpc_status.from_call(info.value)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    assert 1 <= retry.retry_delay.seconds <= 60

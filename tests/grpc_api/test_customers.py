"""``patron.v1.CustomerService`` over a real gRPC connection against the test database."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc import aio
from grpc_status import rpc_status

from patron.grpc_api.v1 import customers_pb2 as pb
from tests.grpc_api.conftest import metadata

Stub = Any


async def _error(call: Any) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as info:
        await call
    return info.value


async def _admin(api_key_headers: Any, tenant: str) -> tuple[tuple[str, str], ...]:
    return metadata(await api_key_headers("admin", tenant))


async def _upsert(stub: Stub, md: Any, **fields: Any) -> pb.UpsertCustomerResponse:
    response: pb.UpsertCustomerResponse = await stub.UpsertCustomer(
        pb.UpsertCustomerRequest(**fields), metadata=md
    )
    return response


async def test_upsert_then_get_by_id_and_psid(
    stub: Stub, api_key_headers: Any, tenant: str
) -> None:
    md = await _admin(api_key_headers, tenant)
    created = await _upsert(
        stub,
        md,
        app_id="app-1",
        psid="psid-1",
        platform=pb.PLATFORM_INSTAGRAM,
        first_name="Ada",
        tags=pb.TagList(values=["VIP"]),
    )
    assert created.created
    customer = created.customer
    assert customer.tenant_id == tenant
    assert customer.first_name == "Ada"
    assert customer.platform == pb.PLATFORM_INSTAGRAM
    assert customer.status == pb.CUSTOMER_STATUS_ACTIVE
    assert list(customer.tags) == ["VIP"]
    assert not customer.HasField("email")

    updated = await _upsert(stub, md, app_id="app-1", psid="psid-1", last_name="Lovelace")
    assert not updated.created
    assert updated.customer.id == customer.id
    assert updated.customer.version == customer.version + 1

    got = await stub.GetCustomer(pb.GetCustomerRequest(customer_id=customer.id), metadata=md)
    assert got.customer.full_name == "Ada Lovelace"
    by_psid = await stub.GetCustomerByPsid(
        pb.GetCustomerByPsidRequest(psid="psid-1", app_id="app-1"), metadata=md
    )
    assert by_psid.customer.id == customer.id


async def test_bearer_jwt_and_bearer_api_key_authenticate(
    stub: Stub, api_key_headers: Any, token_headers: Any, tenant: str
) -> None:
    key = (await api_key_headers("service", tenant))["X-API-Key"]
    md = (("authorization", f"Bearer {key}"),)
    created = await _upsert(stub, md, email="grace@example.com")
    jwt = metadata(token_headers("agent", tenant))
    got = await stub.GetCustomer(
        pb.GetCustomerRequest(customer_id=created.customer.id), metadata=jwt
    )
    assert got.customer.email == "grace@example.com"


async def test_unauthenticated_call_is_unauthenticated_with_trace_id(stub: Stub) -> None:
    call = stub.GetCustomer(
        pb.GetCustomerRequest(customer_id=str(uuid.uuid4())),
        metadata=(("x-trace-id", "trace-grpc-1"),),
    )
    error = await _error(call)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ("x-trace-id", "trace-grpc-1") in tuple(error.trailing_metadata() or ())


async def test_an_invalid_api_key_is_unauthenticated(stub: Stub) -> None:
    call = stub.GetCustomer(
        pb.GetCustomerRequest(customer_id=str(uuid.uuid4())),
        metadata=(("x-api-key", "ptk_nope_nope"),),
    )
    assert (await _error(call)).code() == grpc.StatusCode.UNAUTHENTICATED


async def test_trace_id_is_echoed_on_success(stub: Stub, api_key_headers: Any, tenant: str) -> None:
    md = await _admin(api_key_headers, tenant)
    call = stub.UpsertCustomer(
        pb.UpsertCustomerRequest(email="t@example.com"), metadata=(*md, ("x-trace-id", "abc-1"))
    )
    await call
    assert ("x-trace-id", "abc-1") in tuple(await call.trailing_metadata() or ())


async def test_wrong_role_is_permission_denied(
    stub: Stub, api_key_headers: Any, tenant: str
) -> None:
    agent = metadata(await api_key_headers("agent", tenant))
    error = await _error(stub.UpsertCustomer(pb.UpsertCustomerRequest(psid="x"), metadata=agent))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    admin = await _admin(api_key_headers, tenant)
    customer = (await _upsert(stub, admin, psid="p-role")).customer
    error = await _error(
        stub.RecordOrder(
            pb.RecordOrderRequest(customer_id=customer.id, order_id="o-1", total="1.00"),
            metadata=admin,
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_another_tenants_customer_is_not_found(
    stub: Stub, api_key_headers: Any, tenant: str, other_tenant: str
) -> None:
    mine = (await _upsert(stub, await _admin(api_key_headers, tenant), psid="p-1")).customer
    theirs = await _admin(api_key_headers, other_tenant)
    for call in (
        stub.GetCustomer(pb.GetCustomerRequest(customer_id=mine.id), metadata=theirs),
        stub.BlockCustomer(pb.BlockCustomerRequest(customer_id=mine.id), metadata=theirs),
    ):
        error = await _error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_platform_key_names_the_tenant_in_metadata(
    stub: Stub, api_key_headers: Any, tenant: str
) -> None:
    platform = metadata(await api_key_headers("admin", tenant, platform=True))
    assert ("x-tenant-id", tenant) in platform
    created = await _upsert(stub, platform, psid="p-platform")
    assert created.customer.tenant_id == tenant
    no_tenant = tuple(item for item in platform if item[0] != "x-tenant-id")
    error = await _error(
        stub.UpsertCustomer(pb.UpsertCustomerRequest(psid="q"), metadata=no_tenant)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_invalid_input_carries_field_violations(
    stub: Stub, api_key_headers: Any, tenant: str
) -> None:
    md = await _admin(api_key_headers, tenant)
    error = await _error(
        stub.UpsertCustomer(pb.UpsertCustomerRequest(email="not-an-email"), metadata=md)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["email"]

    error = await _error(stub.GetCustomer(pb.GetCustomerRequest(customer_id="nope"), metadata=md))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_block_unblock_and_interaction(
    stub: Stub, api_key_headers: Any, tenant: str
) -> None:
    md = await _admin(api_key_headers, tenant)
    ids = [(await _upsert(stub, md, psid=f"p-{i}")).customer.id for i in range(3)]
    page = await stub.ListCustomers(pb.ListCustomersRequest(page_size=2), metadata=md)
    assert page.total == 3
    assert len(page.customers) == 2
    assert page.next_cursor
    rest = await stub.ListCustomers(
        pb.ListCustomersRequest(page_size=2, cursor=page.next_cursor), metadata=md
    )
    assert {c.id for c in [*page.customers, *rest.customers]} == set(ids)

    blocked = await stub.BlockCustomer(
        pb.BlockCustomerRequest(customer_id=ids[0], reason="spam"), metadata=md
    )
    assert blocked.customer.status == pb.CUSTOMER_STATUS_BLOCKED
    assert blocked.customer.block_reason == "spam"
    only_blocked = await stub.ListCustomers(
        pb.ListCustomersRequest(status=pb.CUSTOMER_STATUS_BLOCKED), metadata=md
    )
    assert [c.id for c in only_blocked.customers] == [ids[0]]
    unblocked = await stub.UnblockCustomer(
        pb.UnblockCustomerRequest(customer_id=ids[0]), metadata=md
    )
    assert unblocked.customer.status == pb.CUSTOMER_STATUS_ACTIVE

    when = timestamp_pb2.Timestamp(seconds=1_800_000_000)
    touched = await stub.UpdateLastInteraction(
        pb.UpdateLastInteractionRequest(customer_id=ids[1], occurred_at=when, channel="web"),
        metadata=md,
    )
    assert touched.customer.last_interaction_at == when

    error = await _error(stub.ListCustomers(pb.ListCustomersRequest(page_size=101), metadata=md))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_record_order_and_conflict(stub: Stub, api_key_headers: Any, tenant: str) -> None:
    admin = await _admin(api_key_headers, tenant)
    service = metadata(await api_key_headers("service", tenant))
    first, second = [(await _upsert(stub, admin, psid=f"o-{i}")).customer.id for i in range(2)]
    recorded = await stub.RecordOrder(
        pb.RecordOrderRequest(
            customer_id=first,
            order_id="ord-1",
            total="12.50",
            currency="USD",
            status=pb.ORDER_STATUS_PAID,
        ),
        metadata=service,
    )
    assert recorded.created
    assert recorded.order.total == pb.Money(amount="12.50", currency="USD")
    assert recorded.order.status == pb.ORDER_STATUS_PAID
    again = await stub.RecordOrder(
        pb.RecordOrderRequest(
            customer_id=first, order_id="ord-1", status=pb.ORDER_STATUS_FULFILLED
        ),
        metadata=service,
    )
    assert not again.created
    got = await stub.GetCustomer(pb.GetCustomerRequest(customer_id=first), metadata=admin)
    assert got.customer.stats.total_orders == 1

    error = await _error(
        stub.RecordOrder(
            pb.RecordOrderRequest(customer_id=second, order_id="ord-1", total="1.00"),
            metadata=service,
        )
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    error = await _error(
        stub.RecordOrder(
            pb.RecordOrderRequest(
                customer_id=first, order_id="ord-2", total="1.001", currency="USD"
            ),
            metadata=service,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_customer_reads_only_itself(
    stub: Stub, api_key_headers: Any, token_headers: Any, tenant: str
) -> None:
    md = await _admin(api_key_headers, tenant)
    me, other = [(await _upsert(stub, md, psid=f"self-{i}")).customer.id for i in range(2)]
    mine = metadata(token_headers("customer", tenant, sub=me))
    got = await stub.GetCustomer(pb.GetCustomerRequest(customer_id=me), metadata=mine)
    assert got.customer.id == me
    error = await _error(stub.GetCustomer(pb.GetCustomerRequest(customer_id=other), metadata=mine))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await _error(stub.BlockCustomer(pb.BlockCustomerRequest(customer_id=me), metadata=mine))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED

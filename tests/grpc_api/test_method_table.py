"""The route-table tests of HTTP, for every gRPC method: no credential is UNAUTHENTICATED,
a role the method does not allow is PERMISSION_DENIED, and a method naming another
tenant's customer is NOT_FOUND (never the customer, never another code)."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from grpc import aio

from patron.auth.principal import Role
from patron.grpc_api.access import METHODS
from patron.grpc_api.v1 import customers_pb2 as pb
from tests.grpc_api.conftest import metadata

SERVICE = pb.DESCRIPTOR.services_by_name["CustomerService"]
NAMES = sorted(SERVICE.methods_by_name)


def _request(method: str, customer_id: str) -> Any:
    """A valid request of ``method`` naming ``customer_id`` where it names one."""
    kind = SERVICE.methods_by_name[method].input_type.name
    fields: dict[str, Any] = {
        "GetCustomerByPsidRequest": {"psid": "nobody"},
        "UpsertCustomerRequest": {"psid": "table-psid"},
        "ListCustomersRequest": {},
        "RecordOrderRequest": {"customer_id": customer_id, "order_id": "o", "total": "1.00"},
    }.get(kind, {"customer_id": customer_id})
    return getattr(pb, kind)(**fields)


async def _code(stub: Any, method: str, request: Any, md: Any) -> grpc.StatusCode:
    try:
        await getattr(stub, method)(request, metadata=md)
    except aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("method", NAMES)
async def test_no_credential_is_unauthenticated(stub: Any, method: str) -> None:
    request = _request(method, "00000000-0000-0000-0000-000000000000")
    assert await _code(stub, method, request, ()) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("method", NAMES)
async def test_a_role_not_allowed_is_permission_denied(
    stub: Any, api_key_headers: Any, token_headers: Any, tenant: str, method: str
) -> None:
    refused = [r for r in Role if r not in METHODS[method].roles and r is not Role.CUSTOMER]
    request = _request(method, str(uuid.uuid4()))
    if refused:
        md = metadata(await api_key_headers(refused[0], tenant))
    else:  # every staff and service role may: a customer may not (or only for itself)
        md = metadata(token_headers("customer", tenant, sub=str(uuid.uuid4())))
    expected = (
        grpc.StatusCode.NOT_FOUND
        if not refused and METHODS[method].customer_self
        else grpc.StatusCode.PERMISSION_DENIED
    )
    assert await _code(stub, method, request, md) == expected


@pytest.mark.parametrize(
    "method",
    [m for m in NAMES if "customer_id" in SERVICE.methods_by_name[m].input_type.fields_by_name],
)
async def test_another_tenants_customer_is_not_found(
    stub: Any, api_key_headers: Any, tenant: str, other_tenant: str, method: str
) -> None:
    mine = metadata(await api_key_headers("admin", tenant))
    created = await stub.UpsertCustomer(pb.UpsertCustomerRequest(psid="mine"), metadata=mine)
    allowed = sorted(METHODS[method].roles)[0]
    theirs = metadata(await api_key_headers(allowed, other_tenant))
    request = _request(method, created.customer.id)
    assert await _code(stub, method, request, theirs) == grpc.StatusCode.NOT_FOUND

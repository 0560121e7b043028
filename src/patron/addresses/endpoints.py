"""HTTP routes of customer addresses (API.md "Profile data": staff; the customer for their
own). The service role is not included: API.md names "staff" only (admin, manager, agent)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from patron.addresses.schemas import AddressCreate, AddressPage, AddressRead, AddressUpdate
from patron.addresses.service import AddressService
from patron.auth.principal import Role
from patron.customers.dependencies import known_customer
from patron.http.paging import Paging
from patron.http.scope import RequestContext, Scope

router = APIRouter(prefix="/customers/{customer_id}/addresses", tags=["addresses"])

ADDRESSES = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT, customer_self=True)
Ctx = Annotated[RequestContext, Depends(ADDRESSES)]
KnownCustomer = Annotated[RequestContext, Depends(known_customer(ADDRESSES))]


@router.get("", response_model=AddressPage, summary="List a customer's addresses")
async def list_addresses(customer_id: uuid.UUID, ctx: Ctx, window: Paging) -> AddressPage:
    return await AddressService(ctx).list(customer_id, window)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AddressRead,
    summary="Add an address",
    description="Validated per country; doubted values are kept and listed in `warnings`.",
)
async def add_address(
    customer_id: uuid.UUID, body: AddressCreate, ctx: KnownCustomer
) -> AddressRead:
    return await AddressService(ctx).add(customer_id, body)


@router.get("/{address_id}", response_model=AddressRead, summary="Read an address")
async def get_address(customer_id: uuid.UUID, address_id: uuid.UUID, ctx: Ctx) -> AddressRead:
    return await AddressService(ctx).get(customer_id, address_id)


@router.put(
    "/{address_id}",
    response_model=AddressRead,
    summary="Change an address",
    operation_id="updateAddress",
)
async def put_address(
    customer_id: uuid.UUID, address_id: uuid.UUID, body: AddressUpdate, ctx: KnownCustomer
) -> AddressRead:
    return await AddressService(ctx).update(customer_id, address_id, body)


@router.delete("/{address_id}", status_code=204, summary="Remove an address")
async def delete_address(customer_id: uuid.UUID, address_id: uuid.UUID, ctx: Ctx) -> Response:
    await AddressService(ctx).remove(customer_id, address_id)
    return Response(status_code=204)

"""HTTP routes of customer addresses (API.md "Profile data": staff; the customer for their
own). The service role is not included: API.md names "staff" only (admin, manager, agent)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from patron.addresses.schemas import AddressCreate, AddressPage, AddressRead, AddressUpdate
from patron.addresses.service import AddressService
from patron.auth.principal import Role
from patron.customers.dependencies import known_customer as customer_dependency
from patron.customers.service import CustomerService
from patron.http.scope import RequestContext, Scope
from patron.kit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

router = APIRouter(prefix="/customers/{customer_id}/addresses", tags=["addresses"])

ADDRESSES = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT, customer_self=True)
Ctx = Annotated[RequestContext, Depends(ADDRESSES, scope="function")]


def customers(ctx: RequestContext) -> CustomerService:
    return CustomerService(ctx)


def service(ctx: RequestContext) -> AddressService:
    return AddressService(session=ctx.session, tenant=ctx.tenant, customers=customers(ctx))


known_customer = customer_dependency(ADDRESSES)


@router.get("", response_model=AddressPage, summary="List a customer's addresses")
async def list_addresses(
    customer_id: uuid.UUID,
    ctx: Ctx,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> AddressPage:
    return await service(ctx).list_addresses(
        customer_id, page=page, page_size=page_size, cursor=cursor
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AddressRead,
    summary="Add an address",
    description="Validated per country; doubted values are kept and listed in `warnings`.",
)
async def add_address(
    customer_id: uuid.UUID,
    body: AddressCreate,
    ctx: Annotated[RequestContext, Depends(known_customer, scope="function")],
) -> AddressRead:
    return await service(ctx).add(customer_id, body)


@router.get("/{address_id}", response_model=AddressRead, summary="Read an address")
async def get_address(customer_id: uuid.UUID, address_id: uuid.UUID, ctx: Ctx) -> AddressRead:
    return await service(ctx).get(customer_id, address_id)


@router.put("/{address_id}", response_model=AddressRead, summary="Change an address")
async def put_address(
    customer_id: uuid.UUID,
    address_id: uuid.UUID,
    body: AddressUpdate,
    ctx: Annotated[RequestContext, Depends(known_customer, scope="function")],
) -> AddressRead:
    return await service(ctx).update(customer_id, address_id, body)


@router.delete("/{address_id}", status_code=204, summary="Remove an address")
async def delete_address(customer_id: uuid.UUID, address_id: uuid.UUID, ctx: Ctx) -> Response:
    await service(ctx).remove(customer_id, address_id)
    return Response(status_code=204)

"""HTTP routes of orders, appointments and stats (API.md "Orders, appointments, stats":
staff read, the service records; stats: staff, service and the customer for their own).

``POST`` answers 201 when the ``order_id`` / ``appointment_id`` is new and 200 when it
updated (or re-recorded unchanged) an existing one.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from patron.auth.principal import Role
from patron.customers.dependencies import known_customer
from patron.customers.service import CustomerService
from patron.http.scope import RequestContext, Scope
from patron.kit.keyset import Window
from patron.kit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from patron.orders.appointments import AppointmentService
from patron.orders.schemas import (
    AppointmentPage,
    AppointmentRead,
    AppointmentRecord,
    AppointmentStatus,
    CustomerStatsRead,
    OrderPage,
    OrderRead,
    OrderRecord,
    OrderStatus,
)
from patron.orders.service import OrderService
from patron.orders.stats import StatsKeeper

router = APIRouter(prefix="/customers/{customer_id}", tags=["orders"])

STAFF_READ = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT)
RECORDER = Scope(Role.SERVICE)
STATS_READERS = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE, customer_self=True)

Reader = Annotated[RequestContext, Depends(STAFF_READ, scope="function")]
Recorder = Annotated[RequestContext, Depends(known_customer(RECORDER), scope="function")]
StatsReader = Annotated[RequestContext, Depends(known_customer(STATS_READERS), scope="function")]
Page = Annotated[int, Query(ge=1, le=100_000)]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=1000)]

CREATED_OR_UPDATED: dict[int | str, dict[str, Any]] = {
    200: {"description": "An existing id was updated (or recorded again unchanged)"},
    201: {"description": "A new id was recorded"},
}


def orders(ctx: RequestContext) -> OrderService:
    """The order service for a request."""
    return OrderService(
        session=ctx.session,
        tenant=ctx.tenant,
        settings=ctx.app.settings,
        customers=CustomerService(ctx),
    )


def appointments(ctx: RequestContext) -> AppointmentService:
    """The appointment service for a request."""
    return AppointmentService(
        session=ctx.session,
        tenant=ctx.tenant,
        settings=ctx.app.settings,
        customers=CustomerService(ctx),
    )


@router.get("/orders", response_model=OrderPage, summary="List a customer's orders")
async def list_orders(
    customer_id: uuid.UUID,
    ctx: Reader,
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> OrderPage:
    return await orders(ctx).list_orders(customer_id, Window(page, page_size, cursor), status_)


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderRead,
    responses=CREATED_OR_UPDATED,
    summary="Record an order (idempotent by order_id)",
)
async def record_order(
    customer_id: uuid.UUID, body: OrderRecord, ctx: Recorder, response: Response
) -> OrderRead:
    result = await orders(ctx).record(customer_id, body)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result.read


@router.get(
    "/appointments", response_model=AppointmentPage, summary="List a customer's appointments"
)
async def list_appointments(
    customer_id: uuid.UUID,
    ctx: Reader,
    status_: Annotated[AppointmentStatus | None, Query(alias="status")] = None,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> AppointmentPage:
    return await appointments(ctx).list_appointments(
        customer_id, Window(page, page_size, cursor), status_
    )


@router.post(
    "/appointments",
    status_code=status.HTTP_201_CREATED,
    response_model=AppointmentRead,
    responses=CREATED_OR_UPDATED,
    summary="Record an appointment (idempotent by appointment_id)",
)
async def record_appointment(
    customer_id: uuid.UUID, body: AppointmentRecord, ctx: Recorder, response: Response
) -> AppointmentRead:
    result = await appointments(ctx).record(customer_id, body)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result.read


@router.get("/stats", response_model=CustomerStatsRead, summary="A customer's order stats")
async def customer_stats(customer_id: uuid.UUID, ctx: StatsReader) -> CustomerStatsRead:
    snapshot = await StatsKeeper(ctx.session, ctx.tenant, ctx.app.settings).stored(customer_id)
    return snapshot.read()

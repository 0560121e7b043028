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
from patron.http.paging import Paging
from patron.http.scope import RequestContext, Scope
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

router = APIRouter(prefix="/customers/{customer_id}", tags=["orders"])

STAFF_READ = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT)
RECORDER = Scope(Role.SERVICE)
STATS_READERS = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE, customer_self=True)

Reader = Annotated[RequestContext, Depends(STAFF_READ, scope="function")]
Recorder = Annotated[RequestContext, Depends(known_customer(RECORDER), scope="function")]
StatsReader = Annotated[RequestContext, Depends(STATS_READERS, scope="function")]

CREATED_OR_UPDATED: dict[int | str, dict[str, Any]] = {
    200: {"description": "An existing id was updated (or recorded again unchanged)"},
    201: {"description": "A new id was recorded"},
}


@router.get("/orders", response_model=OrderPage, summary="List a customer's orders")
async def list_orders(
    customer_id: uuid.UUID,
    ctx: Reader,
    window: Paging,
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
) -> OrderPage:
    return await OrderService(ctx).list_orders(customer_id, window, status_)


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderRead,
    responses={
        **CREATED_OR_UPDATED,
        409: {"description": "This order_id is recorded for another customer"},
    },
    summary="Record an order (idempotent by order_id)",
)
async def record_order(
    customer_id: uuid.UUID, body: OrderRecord, ctx: Recorder, response: Response
) -> OrderRead:
    result = await OrderService(ctx).record(customer_id, body)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result.read


@router.get(
    "/appointments", response_model=AppointmentPage, summary="List a customer's appointments"
)
async def list_appointments(
    customer_id: uuid.UUID,
    ctx: Reader,
    window: Paging,
    status_: Annotated[AppointmentStatus | None, Query(alias="status")] = None,
) -> AppointmentPage:
    return await AppointmentService(ctx).list_appointments(customer_id, window, status_)


@router.post(
    "/appointments",
    status_code=status.HTTP_201_CREATED,
    response_model=AppointmentRead,
    responses={
        **CREATED_OR_UPDATED,
        409: {"description": "This appointment_id is recorded for another customer"},
    },
    summary="Record an appointment (idempotent by appointment_id)",
)
async def record_appointment(
    customer_id: uuid.UUID, body: AppointmentRecord, ctx: Recorder, response: Response
) -> AppointmentRead:
    result = await AppointmentService(ctx).record(customer_id, body)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result.read


@router.get(
    "/stats",
    response_model=CustomerStatsRead,
    summary="A customer's order stats",
    operation_id="getCustomerStats",
)
async def customer_stats(customer_id: uuid.UUID, ctx: StatsReader) -> CustomerStatsRead:
    return await OrderService(ctx).customer_stats(customer_id)

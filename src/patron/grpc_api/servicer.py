"""``patron.v1.CustomerService``: each method translates its request, calls the service
operation the HTTP route of the same use case calls, and translates the result. Who may
call, and for which tenant, was settled by :class:`patron.grpc_api.interceptors.CallInterceptor`;
errors are PatronErrors, mapped there.
"""

from __future__ import annotations

from typing import Any

from grpc import aio

from patron.customers.listing import CustomerQuery, SortBy, SortOrder
from patron.customers.schemas import CustomerStatus, CustomerType, Platform
from patron.customers.service import CustomerService
from patron.errors import InvalidInput
from patron.grpc_api import convert
from patron.grpc_api.interceptors import call_context
from patron.grpc_api.v1 import customers_pb2 as pb
from patron.grpc_api.v1 import customers_pb2_grpc as pb_grpc
from patron.kit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from patron.orders.service import OrderService

Context = aio.ServicerContext[Any, Any]
MAX_PAGE = 100_000  # as patron.http.paging
_SORT_BY = {
    pb.SORT_BY_CREATED_AT: SortBy.CREATED_AT,
    pb.SORT_BY_UPDATED_AT: SortBy.UPDATED_AT,
    pb.SORT_BY_LAST_NAME: SortBy.LAST_NAME,
    pb.SORT_BY_EMAIL: SortBy.EMAIL,
    pb.SORT_BY_LAST_INTERACTION_AT: SortBy.LAST_INTERACTION_AT,
    pb.SORT_BY_TOTAL_SPENT: SortBy.TOTAL_SPENT,
    pb.SORT_BY_LAST_ORDER_DATE: SortBy.LAST_ORDER_DATE,
}


class CustomerServicer(pb_grpc.CustomerServiceServicer):
    """The servicer of ``patron.v1.CustomerService`` (API.md "gRPC")."""

    async def GetCustomer(
        self, request: pb.GetCustomerRequest, context: Context
    ) -> pb.GetCustomerResponse:
        customer_id = convert.uuid_field(request.customer_id, "customer_id")
        customer = await CustomerService(call_context()).get(customer_id)
        return pb.GetCustomerResponse(customer=convert.customer_out(customer))

    async def GetCustomerByPsid(
        self, request: pb.GetCustomerByPsidRequest, context: Context
    ) -> pb.GetCustomerByPsidResponse:
        app_id = request.app_id if request.HasField("app_id") else None
        customer = await CustomerService(call_context()).get_by_psid(request.psid, app_id)
        return pb.GetCustomerByPsidResponse(customer=convert.customer_out(customer))

    async def UpsertCustomer(
        self, request: pb.UpsertCustomerRequest, context: Context
    ) -> pb.UpsertCustomerResponse:
        outcome = await CustomerService(call_context()).upsert(convert.upsert_in(request))
        return pb.UpsertCustomerResponse(
            created=outcome.created, customer=convert.customer_out(outcome.customer)
        )

    async def ListCustomers(
        self, request: pb.ListCustomersRequest, context: Context
    ) -> pb.ListCustomersResponse:
        page = await CustomerService(call_context()).list(_query(request))
        return pb.ListCustomersResponse(
            customers=[convert.customer_out(c) for c in page.customers],
            total=page.total,
            page=page.page,
            page_size=page.page_size,
            total_pages=page.total_pages,
            next_cursor=page.next_cursor or "",
            total_is_estimate=page.total_is_estimate,
        )

    async def BlockCustomer(
        self, request: pb.BlockCustomerRequest, context: Context
    ) -> pb.BlockCustomerResponse:
        customer_id = convert.uuid_field(request.customer_id, "customer_id")
        reason = request.reason if request.HasField("reason") else None
        customer = await CustomerService(call_context()).block(customer_id, reason)
        return pb.BlockCustomerResponse(customer=convert.customer_out(customer))

    async def UnblockCustomer(
        self, request: pb.UnblockCustomerRequest, context: Context
    ) -> pb.UnblockCustomerResponse:
        customer_id = convert.uuid_field(request.customer_id, "customer_id")
        reason = request.reason if request.HasField("reason") else None
        customer = await CustomerService(call_context()).unblock(customer_id, reason)
        return pb.UnblockCustomerResponse(customer=convert.customer_out(customer))

    async def UpdateLastInteraction(
        self, request: pb.UpdateLastInteractionRequest, context: Context
    ) -> pb.UpdateLastInteractionResponse:
        customer_id = convert.uuid_field(request.customer_id, "customer_id")
        channel = request.channel if request.HasField("channel") else None
        if channel is not None and len(channel) > 32:  # InteractionRequest.channel
            raise InvalidInput("channel: at most 32 characters", loc=["channel"])
        occurred_at = convert.datetime_in(request, "occurred_at")
        customer = await CustomerService(call_context()).record_interaction(
            customer_id, occurred_at, channel
        )
        return pb.UpdateLastInteractionResponse(customer=convert.customer_out(customer))

    async def RecordOrder(
        self, request: pb.RecordOrderRequest, context: Context
    ) -> pb.RecordOrderResponse:
        customer_id = convert.uuid_field(request.customer_id, "customer_id")
        result = await OrderService(call_context()).record(customer_id, convert.order_in(request))
        return pb.RecordOrderResponse(created=result.created, order=convert.order_out(result.read))


def _query(request: pb.ListCustomersRequest) -> CustomerQuery:
    """The list request as the :class:`CustomerQuery` the HTTP list builds. Raises 422 for
    a page or page size out of range."""
    page = request.page or 1
    page_size = request.page_size or DEFAULT_PAGE_SIZE
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput(f"page must be 1..{MAX_PAGE}", loc=["page"])
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page_size must be 1..{MAX_PAGE_SIZE}", loc=["page_size"])

    def text(name: str) -> str | None:
        return getattr(request, name) if request.HasField(name) else None  # type: ignore[arg-type]

    status = convert.enum_in(CustomerStatus, request.status)
    customer_type = convert.enum_in(CustomerType, request.customer_type)
    platform = convert.enum_in(Platform, request.platform)
    return CustomerQuery(
        q=text("q"),
        email=text("email"),
        phone=text("phone"),
        psid=text("psid"),
        app_id=text("app_id"),
        status=CustomerStatus(status) if status else None,
        customer_type=CustomerType(customer_type) if customer_type else None,
        platform=Platform(platform) if platform else None,
        tags=list(request.tags),
        created_after=convert.datetime_in(request, "created_after"),
        created_before=convert.datetime_in(request, "created_before"),
        blocked=request.blocked if request.HasField("blocked") else None,
        page=page,
        page_size=page_size,
        cursor=text("cursor"),
        sort_by=_SORT_BY.get(request.sort_by, SortBy.CREATED_AT),
        sort_order=SortOrder.ASC if request.sort_order == pb.SORT_ORDER_ASC else SortOrder.DESC,
    )

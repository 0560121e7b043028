"""HTTP routes of the customer API (API.md "Customers")."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import ValidationError

from patron.auth.dependencies import EndpointScope, RequestContext, Scope
from patron.auth.principal import Role
from patron.customers import listing
from patron.customers.merge import merge_customers
from patron.customers.schemas import (
    BlockRequest,
    CustomerCreate,
    CustomerPage,
    CustomerRead,
    CustomerStatus,
    CustomerType,
    CustomerUpdate,
    CustomerUpsert,
    InteractionRequest,
    MergeRequest,
    MergeResult,
    Platform,
    UpsertResult,
)
from patron.customers.service import CustomerService, UpsertPlan, read_customer
from patron.errors import Forbidden, InvalidInput, PatronError, validation_errors
from patron.identities.repository import IdentityTaken
from patron.kit.etag import etag_for
from patron.kit.jsonutil import dumps
from patron.kit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from patron.ops.metrics import IDENTITY_RACES

router = APIRouter(prefix="/customers", tags=["customers"])
T = TypeVar("T")

ADMIN, MANAGER, AGENT, SERVICE = Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE
# A write that loses an identity to a concurrent create looks again: an upsert up to
# three times in all (it may then update the winner), a create once more (its second look
# answers the 409 with the holder's id). An update is not tried again: the winner now
# holds the key, so the answer is that 409 either way. A last loss is answered with the
# 409 naming the holder.
UPSERT_ATTEMPTS = 3
CREATE_ATTEMPTS = 2
UPDATE_ATTEMPTS = 1
READERS = Scope(ADMIN, MANAGER, AGENT, SERVICE)

# What a customer may change about themselves through PATCH.
CUSTOMER_EDITABLE = frozenset(
    {
        "email",
        "phone",
        "first_name",
        "last_name",
        "gender",
        "birth_date",
        "locale",
        "timezone",
        "preferences",
    }
)

IfMatch = Annotated[str | None, Header(alias="If-Match", description="ETag from a previous read")]


def service(ctx: RequestContext) -> CustomerService:
    return CustomerService.from_context(ctx)


def customer_response(
    customer: CustomerRead, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The customer object itself, with its ETag."""
    return Response(
        content=dumps(customer.model_dump(mode="json")),
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": etag_for(customer.version), **(headers or {})},
    )


def _location(request: Request, customer_id: uuid.UUID) -> str:
    """Path of the customer's resource, beside the collection the request was made to
    (``POST /customers`` or ``POST /customers/upsert``); cheaper than ``url_for``."""
    path: str = request.scope["path"]
    collection = path[: -len("/upsert")] if path.endswith("/upsert") else path.rstrip("/")
    return f"{collection}/{customer_id}"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CustomerRead,
    summary="Create a customer",
    responses={409: {"description": "An identity belongs to another customer"}},
)
async def create_customer(
    body: CustomerCreate,
    request: Request,
    ctx: Annotated[RequestContext, Depends(EndpointScope(ADMIN, MANAGER, SERVICE))],
) -> Response:
    ctx.check_tenant_claim("body tenant_id", body.tenant_id)
    driver = "tags" not in body.model_fields_set

    async def create() -> CustomerRead:
        async with ctx.unit_of_work(driver=driver):
            return await service(ctx).create(body)

    # an upsert (which takes no identity lock) may create a holder between our look and
    # our insert: the second attempt's look finds it and answers the documented 409 with
    # conflicting_customer_id
    customer = await _retrying_identity_races(ctx, "create", CREATE_ATTEMPTS, create)
    return customer_response(customer, 201, {"Location": _location(request, customer.id)})


@router.get("", response_model=CustomerPage, summary="List and search customers")
async def list_customers(
    ctx: Annotated[RequestContext, Depends(READERS, scope="function")],
    q: Annotated[
        str | None, Query(max_length=200, description="Substring of name, email, phone or PSID")
    ] = None,
    search: Annotated[str | None, Query(max_length=200, include_in_schema=False)] = None,
    query: Annotated[str | None, Query(max_length=200, include_in_schema=False)] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    phone: Annotated[str | None, Query(max_length=64)] = None,
    psid: Annotated[str | None, Query(max_length=128)] = None,
    app_id: Annotated[str | None, Query(max_length=128)] = None,
    status_: Annotated[CustomerStatus | None, Query(alias="status")] = None,
    customer_type: Annotated[CustomerType | None, Query()] = None,
    platform: Annotated[Platform | None, Query()] = None,
    tag: Annotated[list[str] | None, Query(max_length=20)] = None,
    created_after: Annotated[datetime | None, Query()] = None,
    created_before: Annotated[datetime | None, Query()] = None,
    blocked: Annotated[bool | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, alias="page_size")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    sort_by: Annotated[listing.SortBy, Query()] = listing.SortBy.CREATED_AT,
    sort_order: Annotated[listing.SortOrder, Query()] = listing.SortOrder.DESC,
) -> Response:
    spec = listing.CustomerQuery(
        q=q or search or query,
        email=email,
        phone=phone,
        psid=psid,
        app_id=app_id,
        status=status_,
        customer_type=customer_type,
        platform=platform,
        tags=tag or [],
        created_after=created_after,
        created_before=created_before,
        blocked=blocked,
        page=page,
        page_size=page_size,
        cursor=cursor,
        sort_by=sort_by,
        sort_order=sort_order,
    )
    settings = ctx.app.settings
    found = await listing.list_customers(
        service(ctx).repo,
        spec,
        settings.default_phone_region,
        count_cap=settings.search_count_cap,
        search_collect=settings.search_collect,
    )
    return listing.page_response(found)


def _upsert_query_parameters() -> list[dict[str, Any]]:
    """OpenAPI description of the query-parameter form of upsert (scalar fields only)."""
    params = []
    for name, info in CustomerUpsert.model_fields.items():
        if name in {
            "external_ids",
            "tags",
            "attributes",
            "preferences",
            "access_token",
            "tenant_id",
        }:
            continue
        schema: dict[str, Any] = {"type": "string"}
        if info.annotation is not None and "bool" in str(info.annotation):
            schema = {"type": "boolean"}
        params.append({"name": name, "in": "query", "required": False, "schema": schema})
    return params


@router.post(
    "/upsert",
    response_model=UpsertResult,
    summary="Create or update a customer by identity",
    description=(
        "Fields come as a JSON body, as query parameters "
        "(`?app_id=...&psid=...&platform=instagram&first_name=...`), or both (the body wins). "
        "201 when a customer was created, 200 when one was updated."
    ),
    responses={201: {"model": UpsertResult, "description": "Created"}},
    openapi_extra={"parameters": _upsert_query_parameters()},
)
async def upsert_customer(
    request: Request,
    ctx: Annotated[RequestContext, Depends(EndpointScope(ADMIN, SERVICE))],
    body: CustomerUpsert | None = None,
) -> Response:
    fields: dict[str, Any] = {
        k: v for k, v in request.query_params.items() if k not in {"tenant_id"}
    }
    if body is not None:
        fields.update(body.model_dump(exclude_unset=True, by_alias=False))
    if (
        body is not None
        and "access_token" in body.model_fields_set
        and body.access_token is not None
    ):
        fields["access_token"] = body.access_token.get_secret_value()
    try:
        merged = CustomerUpsert.model_validate(fields)
    except ValidationError as exc:
        errors = validation_errors(exc.errors())
        for err in errors:
            err["loc"] = ["body", *err["loc"]]
        raise InvalidInput(errors[0]["msg"] if errors else "invalid input", errors=errors) from exc
    ctx.check_tenant_claim("body tenant_id", merged.tenant_id)
    # The hot path (a messaging webhook's upsert) is prepared statements only: a first
    # look without locks or transaction answers an unchanged upsert (a webhook's retry)
    # on its own, and the write is a driver transaction, no ORM session. ``tags`` go
    # through the tag domain, which needs one.
    driver = "tags" not in merged.model_fields_set

    async def upsert() -> Response:
        plan: UpsertPlan | None = None
        if driver:
            async with ctx.driver_reads():
                plan = await service(ctx).resolve_upsert(merged, read=True)
            unchanged = CustomerService.unchanged(plan)
            if unchanged is not None:
                return _upsert_response(request, False, unchanged)
        async with ctx.unit_of_work(driver=driver):
            svc = service(ctx)
            created, customer = await svc.upsert(
                plan or await svc.resolve_upsert(merged, read=False)
            )
        return _upsert_response(request, created, customer)

    # a concurrent upsert may create the customer first: look again
    return await _retrying_identity_races(ctx, "upsert", UPSERT_ATTEMPTS, upsert)


async def _retrying_identity_races(
    ctx: RequestContext, route: str, attempts: int, attempt: Callable[[], Awaitable[T]]
) -> T:
    """Run ``attempt`` (a whole unit of work) again when it loses an identity to a
    concurrent create (:class:`IdentityTaken`, decision 0002), up to ``attempts`` times in
    all. The last loss is the documented 409 naming the holder
    (:meth:`CustomerService.race_conflict`, a fresh read). Each loss counts in
    ``patron_identity_races_total{route}``."""
    for remaining in range(attempts - 1, -1, -1):
        try:
            return await attempt()
        except IdentityTaken as taken:
            IDENTITY_RACES.labels(route).inc()
            if remaining:
                continue
            async with ctx.driver_reads():
                named: PatronError = await service(ctx).race_conflict(taken)
            if named is taken:
                raise
            raise named from taken
    raise ValueError("attempts must be at least 1")


def _upsert_response(request: Request, created: bool, customer: CustomerRead) -> Response:
    payload = UpsertResult(created=created, customer=customer).model_dump(mode="json")
    headers = {"ETag": etag_for(customer.version)}
    if created:
        headers["Location"] = _location(request, customer.id)
    return Response(
        dumps(payload),
        status_code=201 if created else 200,
        media_type="application/json",
        headers=headers,
    )


@router.get("/psid/{psid}", response_model=CustomerRead, summary="Read a customer by PSID or IGSID")
async def get_customer_by_psid(
    psid: str,
    ctx: Annotated[RequestContext, Depends(READERS, scope="function")],
    app_id: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    return customer_response(await service(ctx).get_by_psid(psid, app_id))


@router.get("/{customer_id}", response_model=CustomerRead, summary="Read a customer")
async def get_customer(
    customer_id: uuid.UUID,
    ctx: Annotated[
        RequestContext,
        Depends(EndpointScope(ADMIN, MANAGER, AGENT, SERVICE, customer_self=True)),
    ],
) -> Response:
    async with ctx.driver_reads() as connection:
        customer = await read_customer(connection, ctx.tenant, customer_id)
    return customer_response(customer)


@router.put("/{customer_id}", response_model=CustomerRead, summary="Update a customer")
async def put_customer(
    customer_id: uuid.UUID,
    body: CustomerUpdate,
    ctx: Annotated[RequestContext, Depends(EndpointScope(ADMIN, MANAGER, SERVICE))],
    if_match: IfMatch = None,
) -> Response:
    ctx.check_tenant_claim("body tenant_id", body.tenant_id)
    return customer_response(await _update(ctx, customer_id, body, if_match))


@router.patch(
    "/{customer_id}",
    response_model=CustomerRead,
    summary="Partially update a customer",
    responses={429: {"description": "Rate limited (CUSTOMER_PATCH_RATE)"}},
)
async def patch_customer(
    customer_id: uuid.UUID,
    body: CustomerUpdate,
    ctx: Annotated[
        RequestContext, Depends(EndpointScope(ADMIN, MANAGER, SERVICE, customer_self=True))
    ],
    if_match: IfMatch = None,
) -> Response:
    ctx.check_tenant_claim("body tenant_id", body.tenant_id)
    if ctx.principal.is_customer_only:
        refused = sorted(body.model_fields_set - CUSTOMER_EDITABLE - {"tenant_id"})
        if refused:
            raise Forbidden(f"a customer may not change: {', '.join(refused)}", fields=refused)
    await ctx.app.rate_limiter.hit(
        ctx.app.settings.customer_patch_rate,
        "customer_patch",
        ctx.tenant,
        ctx.principal.id,
        str(customer_id),
    )
    return customer_response(await _update(ctx, customer_id, body, if_match))


async def _update(
    ctx: RequestContext, customer_id: uuid.UUID, body: CustomerUpdate, if_match: str | None
) -> CustomerRead:
    """PUT and PATCH: :meth:`CustomerService.update` in its own session unit."""

    async def update() -> CustomerRead:
        async with ctx.unit_of_work(driver=False):
            return await service(ctx).update(customer_id, body, if_match=if_match)

    return await _retrying_identity_races(ctx, "update", UPDATE_ATTEMPTS, update)


@router.delete("/{customer_id}", status_code=204, summary="Soft-delete a customer")
async def delete_customer(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(Scope(ADMIN, MANAGER), scope="function")],
    if_match: IfMatch = None,
) -> Response:
    await service(ctx).delete(customer_id, if_match=if_match)
    return Response(status_code=204)


@router.post(
    "/{customer_id}/merge",
    response_model=MergeResult,
    summary="Merge another customer into this one",
)
async def merge_customer(
    customer_id: uuid.UUID,
    body: MergeRequest,
    ctx: Annotated[RequestContext, Depends(Scope(ADMIN), scope="function")],
) -> Response:
    result = await merge_customers(service(ctx), customer_id, body.source_id)
    return Response(
        dumps(result.model_dump(mode="json")),
        media_type="application/json",
        headers={"ETag": etag_for(result.customer.version)},
    )


@router.post("/{customer_id}/block", response_model=CustomerRead, summary="Block a customer")
async def block_customer(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(Scope(ADMIN, MANAGER, AGENT), scope="function")],
    body: BlockRequest | None = None,
) -> Response:
    return customer_response(await service(ctx).block(customer_id, body.reason if body else None))


@router.post("/{customer_id}/unblock", response_model=CustomerRead, summary="Unblock a customer")
async def unblock_customer(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(Scope(ADMIN, MANAGER, AGENT), scope="function")],
    body: BlockRequest | None = None,
) -> Response:
    return customer_response(await service(ctx).unblock(customer_id, body.reason if body else None))


@router.patch(
    "/{customer_id}/interaction", response_model=CustomerRead, summary="Record the last interaction"
)
async def record_interaction(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(READERS, scope="function")],
    body: InteractionRequest | None = None,
) -> Response:
    body = body or InteractionRequest()
    return customer_response(
        await service(ctx).record_interaction(customer_id, body.occurred_at, body.channel)
    )

"""HTTP routes of the customer API (API.md "Customers")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import ValidationError

from patron.auth.principal import Role
from patron.customers import listing
from patron.customers.profile import ProfileService
from patron.customers.schemas import (
    BlockRequest,
    CustomerCreate,
    CustomerPage,
    CustomerRead,
    CustomerStatus,
    CustomerType,
    CustomerUpdate,
    CustomerUpsert,
    Email,
    InteractionRequest,
    MergeRequest,
    MergeResult,
    Phone,
    Platform,
    UpsertResult,
)
from patron.customers.service import CustomerService, UpsertOutcome
from patron.errors import InvalidInput, validation_errors
from patron.http.openapi import success_headers
from patron.http.paging import Paging
from patron.http.scope import RequestContext, Scope
from patron.kit.etag import etag_for
from patron.kit.jsonutil import dumps

router = APIRouter(prefix="/customers", tags=["customers"])

ADMIN, MANAGER, AGENT, SERVICE = Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE
READERS = Scope(ADMIN, MANAGER, AGENT, SERVICE)

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='ETag from a previous read (`"3"`, `W/"3"` or `*`): the write happens '
        "only if the customer is still at that version, else 412",
    ),
]

# Responses that carry the customer, with its ETag (API.md "Conventions").
WITH_ETAG: dict[int | str, dict[str, Any]] = {200: success_headers("ETag")}
IDENTITY_TAKEN = {
    "description": "An identity (email, phone, PSID, ...) belongs to another customer "
    "(`conflicting_customer_id`)"
}


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
    responses={201: success_headers("ETag", "Location"), 409: IDENTITY_TAKEN},
)
async def create_customer(
    body: CustomerCreate,
    request: Request,
    ctx: Annotated[RequestContext, Depends(Scope(ADMIN, MANAGER, SERVICE))],
) -> Response:
    customer = await CustomerService(ctx).create(body)
    return customer_response(customer, 201, {"Location": _location(request, customer.id)})


@router.get("", response_model=CustomerPage, summary="List and search customers")
async def list_customers(
    ctx: Annotated[RequestContext, Depends(READERS)],
    window: Paging,
    q: Annotated[
        str | None, Query(max_length=200, description="Substring of name, email, phone or PSID")
    ] = None,
    search: Annotated[str | None, Query(max_length=200, include_in_schema=False)] = None,
    query: Annotated[str | None, Query(max_length=200, include_in_schema=False)] = None,
    email: Annotated[Email | None, Query()] = None,
    phone: Annotated[Phone | None, Query()] = None,
    psid: Annotated[str | None, Query(max_length=128)] = None,
    app_id: Annotated[str | None, Query(max_length=128)] = None,
    status_: Annotated[CustomerStatus | None, Query(alias="status")] = None,
    customer_type: Annotated[CustomerType | None, Query()] = None,
    platform: Annotated[Platform | None, Query()] = None,
    tag: Annotated[list[str] | None, Query(max_length=20)] = None,
    created_after: Annotated[datetime | None, Query()] = None,
    created_before: Annotated[datetime | None, Query()] = None,
    blocked: Annotated[bool | None, Query()] = None,
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
        page=window.page,
        page_size=window.page_size,
        cursor=window.cursor,
        sort_by=sort_by,
        sort_order=sort_order,
    )
    return _page_response(await CustomerService(ctx).list(spec))


def _page_response(page: CustomerPage) -> Response:
    """``page`` as JSON, serialised by pydantic in one pass (the route keeps
    ``response_model=CustomerPage`` for the OpenAPI schema)."""
    return Response(
        content=CustomerPage.__pydantic_serializer__.to_json(page), media_type="application/json"
    )


def _upsert_query_parameters() -> list[dict[str, Any]]:
    """OpenAPI description of the query-parameter form of upsert (scalar fields only), each
    with the rules of its body field (enums, patterns, formats, lengths)."""
    model_schema = CustomerUpsert.model_json_schema()
    defs = model_schema.get("$defs", {})
    params = []
    for name, prop in model_schema["properties"].items():
        if name in {
            "external_ids",
            "tags",
            "attributes",
            "preferences",
            "access_token",
            "tenant_id",
        }:
            continue
        branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
        schema = dict(branches[0]) if branches else {"type": "string"}
        if "$ref" in schema:
            schema = dict(defs[schema["$ref"].rsplit("/", 1)[-1]])
        schema.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": False}
        if prop.get("description"):
            param["description"] = prop["description"]
        params.append({**param, "schema": schema})
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
    responses={
        200: success_headers("ETag", description="Updated (or unchanged)"),
        201: {"model": UpsertResult, **success_headers("ETag", "Location", description="Created")},
        409: {"description": "The identities given belong to different customers: merge first"},
    },
    openapi_extra={"parameters": _upsert_query_parameters()},
)
async def upsert_customer(
    request: Request,
    ctx: Annotated[RequestContext, Depends(Scope(ADMIN, SERVICE))],
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
        # name where each invalid field came from: the body wins over the query string
        from_body = body.model_fields_set if body is not None else set()
        errors = validation_errors(exc.errors())
        for err in errors:
            origin = "body" if err["loc"] and err["loc"][0] in from_body else "query"
            err["loc"] = [origin, *err["loc"]]
        first = errors[0] if errors else {"loc": ["query"], "msg": "invalid input"}
        detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        raise InvalidInput(detail, errors=errors) from exc
    return _upsert_response(request, await CustomerService(ctx).upsert(merged))


def _upsert_response(request: Request, outcome: UpsertOutcome) -> Response:
    customer = outcome.customer
    payload = UpsertResult(created=outcome.created, customer=customer).model_dump(mode="json")
    headers = {"ETag": etag_for(customer.version)}
    if outcome.created:
        headers["Location"] = _location(request, customer.id)
    return Response(
        dumps(payload),
        status_code=201 if outcome.created else 200,
        media_type="application/json",
        headers=headers,
    )


@router.get(
    "/psid/{psid}",
    response_model=CustomerRead,
    summary="Read a customer by PSID or IGSID",
    responses={
        **WITH_ETAG,
        409: {"description": "The PSID exists under several apps: pass `app_id`"},
    },
)
async def get_customer_by_psid(
    psid: str,
    ctx: Annotated[RequestContext, Depends(READERS)],
    app_id: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    return customer_response(await CustomerService(ctx).get_by_psid(psid, app_id))


@router.get(
    "/{customer_id}", response_model=CustomerRead, summary="Read a customer", responses=WITH_ETAG
)
async def get_customer(
    customer_id: uuid.UUID,
    ctx: Annotated[
        RequestContext,
        Depends(Scope(ADMIN, MANAGER, AGENT, SERVICE, customer_self=True)),
    ],
) -> Response:
    return customer_response(await CustomerService(ctx).get(customer_id))


@router.put(
    "/{customer_id}",
    response_model=CustomerRead,
    summary="Update a customer",
    operation_id="updateCustomer",
    responses={**WITH_ETAG, 409: IDENTITY_TAKEN},
)
async def put_customer(
    customer_id: uuid.UUID,
    body: CustomerUpdate,
    ctx: Annotated[RequestContext, Depends(Scope(ADMIN, MANAGER, SERVICE))],
    if_match: IfMatch = None,
) -> Response:
    return customer_response(
        await CustomerService(ctx).update(customer_id, body, if_match=if_match)
    )


@router.patch(
    "/{customer_id}",
    response_model=CustomerRead,
    summary="Partially update a customer",
    responses={
        **WITH_ETAG,
        409: IDENTITY_TAKEN,
        429: {"description": "Rate limited (CUSTOMER_PATCH_RATE per caller and customer)"},
    },
)
async def patch_customer(
    customer_id: uuid.UUID,
    body: CustomerUpdate,
    ctx: Annotated[RequestContext, Depends(Scope(ADMIN, MANAGER, SERVICE, customer_self=True))],
    if_match: IfMatch = None,
) -> Response:
    return customer_response(await CustomerService(ctx).patch(customer_id, body, if_match=if_match))


@router.delete("/{customer_id}", status_code=204, summary="Soft-delete a customer")
async def delete_customer(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(Scope(ADMIN, MANAGER))],
    if_match: IfMatch = None,
) -> Response:
    await CustomerService(ctx).delete(customer_id, if_match=if_match)
    return Response(status_code=204)


@router.post(
    "/{customer_id}/merge",
    response_model=MergeResult,
    summary="Merge another customer into this one",
    responses=WITH_ETAG,
)
async def merge_customer(
    customer_id: uuid.UUID,
    body: MergeRequest,
    ctx: Annotated[RequestContext, Depends(Scope(ADMIN))],
) -> Response:
    result = await CustomerService(ctx).merge(customer_id, body.source_id)
    return Response(
        dumps(result.model_dump(mode="json")),
        media_type="application/json",
        headers={"ETag": etag_for(result.customer.version)},
    )


@router.post(
    "/{customer_id}/block",
    response_model=CustomerRead,
    summary="Block a customer",
    responses=WITH_ETAG,
)
async def block_customer(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(Scope(ADMIN, MANAGER, AGENT))],
    body: BlockRequest | None = None,
) -> Response:
    return customer_response(
        await CustomerService(ctx).block(customer_id, body.reason if body else None)
    )


@router.post(
    "/{customer_id}/unblock",
    response_model=CustomerRead,
    summary="Unblock a customer",
    responses=WITH_ETAG,
)
async def unblock_customer(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(Scope(ADMIN, MANAGER, AGENT))],
    body: BlockRequest | None = None,
) -> Response:
    return customer_response(
        await CustomerService(ctx).unblock(customer_id, body.reason if body else None)
    )


@router.patch(
    "/{customer_id}/interaction",
    response_model=CustomerRead,
    summary="Record the last interaction",
    operation_id="updateLastInteraction",
    responses=WITH_ETAG,
)
async def record_interaction(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(READERS)],
    body: InteractionRequest | None = None,
) -> Response:
    body = body or InteractionRequest()
    return customer_response(
        await CustomerService(ctx).record_interaction(customer_id, body.occurred_at, body.channel)
    )


@router.post(
    "/{customer_id}/fetch-profile",
    response_model=CustomerRead,
    summary="Fetch the Meta profile",
    description="Pull name, picture, locale, time zone and gender (Messenger, by PSID) or "
    "name, picture and the Instagram fields (kept under `attributes.instagram`; by IGSID) "
    "from the Meta Graph API, filling only empty fields (the picture URL is always "
    "refreshed). Sets `profile_fetched_at`, emits `customer.updated`. The token is the "
    "customer's own `access_token`, else the tenant's channel's (docs/meta-graph.md).",
    responses={
        **WITH_ETAG,
        409: {"description": "The customer has no PSID / IGSID, or no token exists for it"},
        502: {"description": "The Graph API failed or refused (`meta_code`, `fbtrace_id`)"},
        504: {"description": "The Graph API did not answer in time"},
    },
)
async def fetch_profile(
    customer_id: uuid.UUID, ctx: Annotated[RequestContext, Depends(READERS)]
) -> Response:
    return customer_response(await ProfileService(ctx).fetch(customer_id))

"""HTTP routes of tags (API.md "Profile data": admin, manager, agent; the catalog: staff)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from patron.auth.principal import Role
from patron.customers.dependencies import known_customer as customer_dependency
from patron.customers.service import CustomerService
from patron.http.scope import RequestContext, Scope
from patron.kit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from patron.tags.schemas import CustomerTagList, TagCatalogPage, TagsAdd, TagsAdded
from patron.tags.service import TagService

router = APIRouter(prefix="/customers/{customer_id}/tags", tags=["tags"])
catalog_router = APIRouter(prefix="/tags", tags=["tags"])

STAFF = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT)
Ctx = Annotated[RequestContext, Depends(STAFF, scope="function")]
Page = Annotated[int, Query(ge=1, le=100_000)]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=1000)]


def customers(ctx: RequestContext) -> CustomerService:
    return CustomerService(ctx)


def service(ctx: RequestContext) -> TagService:
    return customers(ctx).tags


known_customer = customer_dependency(STAFF)


@router.get("", response_model=CustomerTagList, summary="List a customer's tags")
async def list_customer_tags(
    customer_id: uuid.UUID,
    ctx: Ctx,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> CustomerTagList:
    return await service(ctx).list_for_customer(
        customer_id, page=page, page_size=page_size, cursor=cursor
    )


@router.post(
    "",
    response_model=TagsAdded,
    summary="Tag a customer",
    description="Labels are matched case-insensitively; one the customer has is a no-op.",
)
async def add_customer_tags(
    customer_id: uuid.UUID,
    body: TagsAdd,
    ctx: Annotated[RequestContext, Depends(known_customer, scope="function")],
) -> TagsAdded:
    return await service(ctx).add(customer_id, body.labels)


@router.delete("/{tag_id}", status_code=204, summary="Remove a tag from a customer")
async def remove_customer_tag(customer_id: uuid.UUID, tag_id: uuid.UUID, ctx: Ctx) -> Response:
    await service(ctx).remove(customer_id, tag_id)
    return Response(status_code=204)


@catalog_router.get("", response_model=TagCatalogPage, summary="The tenant's tag catalog")
async def list_tags(
    ctx: Ctx,
    page: Page = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> TagCatalogPage:
    return await service(ctx).catalog(page=page, page_size=page_size, cursor=cursor)

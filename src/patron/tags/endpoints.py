"""HTTP routes of tags (API.md "Profile data": admin, manager, agent; the catalog: staff).

The tag service is the customer service's (``CustomerService(ctx).tags``: the tag domain
checks customers through it)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from patron.auth.principal import Role
from patron.customers.dependencies import known_customer
from patron.customers.service import CustomerService
from patron.http.paging import Paging
from patron.http.scope import RequestContext, Scope
from patron.tags.schemas import CustomerTagList, TagCatalogPage, TagsAdd, TagsAdded

router = APIRouter(prefix="/customers/{customer_id}/tags", tags=["tags"])
catalog_router = APIRouter(prefix="/tags", tags=["tags"])

STAFF = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT)
Ctx = Annotated[RequestContext, Depends(STAFF)]
KnownCustomer = Annotated[RequestContext, Depends(known_customer(STAFF))]


@router.get("", response_model=CustomerTagList, summary="List a customer's tags")
async def list_customer_tags(customer_id: uuid.UUID, ctx: Ctx, window: Paging) -> CustomerTagList:
    return await CustomerService(ctx).tags.list_for_customer(customer_id, window)


@router.post(
    "",
    response_model=TagsAdded,
    summary="Tag a customer",
    description="Labels are matched case-insensitively; one the customer has is a no-op.",
)
async def add_customer_tags(customer_id: uuid.UUID, body: TagsAdd, ctx: KnownCustomer) -> TagsAdded:
    return await CustomerService(ctx).tags.add(customer_id, body.labels)


@router.delete("/{tag_id}", status_code=204, summary="Remove a tag from a customer")
async def remove_customer_tag(customer_id: uuid.UUID, tag_id: uuid.UUID, ctx: Ctx) -> Response:
    await CustomerService(ctx).tags.remove(customer_id, tag_id)
    return Response(status_code=204)


@catalog_router.get("", response_model=TagCatalogPage, summary="The tenant's tag catalog")
async def list_tags(ctx: Ctx, window: Paging) -> TagCatalogPage:
    return await CustomerService(ctx).tags.catalog(window)

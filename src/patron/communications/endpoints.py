"""HTTP routes of communications (API.md "Profile data"): staff and service only."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response, status

from patron.auth.principal import Role
from patron.communications.schemas import (
    CommunicationCreate,
    CommunicationPage,
    CommunicationRead,
)
from patron.communications.service import CommunicationService
from patron.customers.service import CustomerService
from patron.http.scope import RequestContext, Scope
from patron.kit import rawbody
from patron.kit.jsonutil import dumps
from patron.kit.keyset import Window

router = APIRouter(prefix="/customers/{customer_id}/communications", tags=["communications"])

STAFF_AND_SERVICE = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE)
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def service(ctx: RequestContext) -> CommunicationService:
    customers = CustomerService(ctx)
    return CommunicationService(
        session=ctx.session, tenant=ctx.tenant, customers=customers, actor_id=ctx.principal.id
    )


@router.get(
    "",
    response_model=CommunicationPage,
    summary="A customer's communications, newest first",
    description="`limit` (default 50, max 200) per page; `next_cursor` continues.",
)
async def list_communications(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(STAFF_AND_SERVICE, scope="function")],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> CommunicationPage:
    found, items = await service(ctx).list_page(customer_id, Window(page, limit, cursor))
    return CommunicationPage(
        communications=items,
        **found.envelope(),
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CommunicationRead,
    summary="Record a communication",
    description=(
        "Moves the customer's `last_interaction_at` forward. With `external_id`, a repeat "
        "for the same customer and channel returns the stored record with 200."
    ),
    responses={200: {"model": CommunicationRead, "description": "Already recorded"}},
    openapi_extra=rawbody.documented(CommunicationCreate),
)
async def record_communication(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(STAFF_AND_SERVICE, scope="function")],
    payload: Annotated[dict[str, Any], Body()],
) -> Response:
    svc = service(ctx)
    await svc.customers.require(customer_id)
    body = rawbody.parse(CommunicationCreate, payload)
    created, communication = await svc.record(customer_id, body)
    return Response(
        content=dumps(communication.model_dump(mode="json")),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        media_type="application/json",
    )

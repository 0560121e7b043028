"""HTTP routes of communications (API.md "Profile data"): staff and service only."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response, status

from patron.auth.principal import Role
from patron.communications.schemas import (
    CommunicationCreate,
    CommunicationPage,
    CommunicationRead,
)
from patron.communications.service import CommunicationService
from patron.http.paging import LimitPaging
from patron.http.scope import RequestContext, Scope
from patron.kit import rawbody
from patron.kit.jsonutil import dumps

router = APIRouter(prefix="/customers/{customer_id}/communications", tags=["communications"])

STAFF_AND_SERVICE = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE)
Ctx = Annotated[RequestContext, Depends(STAFF_AND_SERVICE)]


@router.get(
    "",
    response_model=CommunicationPage,
    summary="A customer's communications, newest first",
    description="`limit` (default 50, max 200) per page; `next_cursor` continues.",
)
async def list_communications(
    customer_id: uuid.UUID, ctx: Ctx, window: LimitPaging
) -> CommunicationPage:
    return await CommunicationService(ctx).list(customer_id, window)


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
    customer_id: uuid.UUID, ctx: Ctx, payload: Annotated[dict[str, Any], Body()]
) -> Response:
    created, communication = await CommunicationService(ctx).record(customer_id, payload)
    return Response(
        content=dumps(communication.model_dump(mode="json")),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        media_type="application/json",
    )

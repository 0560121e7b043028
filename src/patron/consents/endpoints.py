"""HTTP routes of the consent ledger (API.md "Profile data"): staff, service, and the
customer for their own."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, status

from patron.auth.principal import Role
from patron.consents.schemas import ConsentCreate, ConsentLedger, ConsentRead
from patron.consents.service import ConsentService
from patron.http.paging import Paging
from patron.http.scope import RequestContext, Scope
from patron.kit import rawbody

router = APIRouter(prefix="/customers/{customer_id}/consents", tags=["consents"])

LEDGER = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE, customer_self=True)
Ctx = Annotated[RequestContext, Depends(LEDGER)]


@router.get("", response_model=ConsentLedger, summary="A customer's consents")
async def get_consents(customer_id: uuid.UUID, ctx: Ctx, window: Paging) -> ConsentLedger:
    return await ConsentService(ctx).ledger(customer_id, window)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ConsentRead,
    summary="Record a consent decision",
    description=(
        "Appends to the ledger (never changes an entry). `actor` is the caller. When the "
        "customer records for themselves and sends no `ip_address` / `user_agent`, the "
        "request's client address and User-Agent are recorded as evidence; for staff and "
        "service callers they are recorded only when sent (the request would show the "
        "relaying system, not the customer)."
    ),
    openapi_extra=rawbody.documented(ConsentCreate),
)
async def record_consent(
    customer_id: uuid.UUID,
    request: Request,
    ctx: Ctx,
    payload: Annotated[dict[str, Any], Body()],
) -> ConsentRead:
    return await ConsentService(ctx).record(
        customer_id,
        payload,
        client_host=request.client.host if request.client is not None else None,
        user_agent=request.headers.get("user-agent"),
    )

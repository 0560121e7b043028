"""HTTP routes of the consent ledger (API.md "Profile data"): staff, service, and the
customer for their own."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, status

from patron.auth.principal import Role
from patron.consents.schemas import ConsentCreate, ConsentLedger, ConsentRead
from patron.consents.service import ConsentService
from patron.customers.service import CustomerService
from patron.http.scope import RequestContext, Scope
from patron.kit import rawbody
from patron.kit.keyset import Window
from patron.kit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

router = APIRouter(prefix="/customers/{customer_id}/consents", tags=["consents"])

LEDGER = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE, customer_self=True)
USER_AGENT_MAX = 1000


def service(ctx: RequestContext) -> ConsentService:
    customers = CustomerService(ctx)
    return ConsentService(session=ctx.session, tenant=ctx.tenant, customers=customers)


@router.get("", response_model=ConsentLedger, summary="A customer's consents")
async def get_consents(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(LEDGER, scope="function")],
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> ConsentLedger:
    current, found, history = await service(ctx).ledger(
        customer_id, Window(page, page_size, cursor)
    )
    return ConsentLedger(
        current=current,
        history=history,
        **found.envelope(),
    )


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
    ctx: Annotated[RequestContext, Depends(LEDGER, scope="function")],
    payload: Annotated[dict[str, Any], Body()],
) -> ConsentRead:
    svc = service(ctx)
    await svc.customers.require(customer_id)
    body = rawbody.parse(ConsentCreate, payload)
    if ctx.principal.customer_id == customer_id and not ctx.principal.has_any(LEDGER.roles):
        updates: dict[str, Any] = {}
        if body.ip_address is None and request.client is not None:
            updates["ip_address"] = _ip_or_none(request.client.host)
        if body.user_agent is None and request.headers.get("user-agent"):
            updates["user_agent"] = request.headers["user-agent"][:USER_AGENT_MAX]
        body = body.model_copy(update=updates)
    _, entry = await svc.record(customer_id, body, actor=ctx.principal.id)
    return entry


def _ip_or_none(host: str) -> str | None:
    """``host`` as a normalised IP address, or None (a test client's name, a socket path)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None

"""HTTP routes of payment methods (API.md "Profile data").

``POST`` takes its body as a plain JSON object: the service looks for card numbers in
every value, known field or not, before anything else (a body that contains one is 422
naming only the field; the value is neither stored, nor logged, nor echoed), then checks
the customer, then validates the fields.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response, status

from patron.auth.principal import Role
from patron.http.paging import Paging
from patron.http.scope import RequestContext, Scope
from patron.kit import rawbody
from patron.payment_methods.schemas import (
    PaymentMethodCreate,
    PaymentMethodPage,
    PaymentMethodRead,
)
from patron.payment_methods.service import PaymentMethodService

router = APIRouter(prefix="/customers/{customer_id}/payment-methods", tags=["payment methods"])

OWNERS = Scope(Role.ADMIN, Role.MANAGER, Role.SERVICE, customer_self=True)
Ctx = Annotated[RequestContext, Depends(OWNERS)]


@router.get("", response_model=PaymentMethodPage, summary="List a customer's payment methods")
async def list_payment_methods(
    customer_id: uuid.UUID, ctx: Ctx, window: Paging
) -> PaymentMethodPage:
    return await PaymentMethodService(ctx).list(customer_id, window)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PaymentMethodRead,
    summary="Add a tokenized payment method",
    description=(
        "Tokens only: a body with a card number in any field (13-19 digits passing the Luhn "
        "check, also with spaces or dashes) is refused with 422 and not stored. The "
        "provider reference is encrypted at rest and returned masked."
    ),
    openapi_extra=rawbody.documented(PaymentMethodCreate),
)
async def add_payment_method(
    customer_id: uuid.UUID, ctx: Ctx, payload: Annotated[dict[str, Any], Body()]
) -> PaymentMethodRead:
    return await PaymentMethodService(ctx).add(customer_id, payload)


@router.delete(
    "/{pm_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a payment method",
)
async def remove_payment_method(customer_id: uuid.UUID, pm_id: uuid.UUID, ctx: Ctx) -> Response:
    await PaymentMethodService(ctx).remove(customer_id, pm_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

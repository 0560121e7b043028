"""HTTP routes of payment methods (API.md "Profile data").

``POST`` reads its body as a plain JSON object and looks for card numbers in every value,
known field or not, before anything else: a body that contains one is 422 naming only
the field, and the value is neither stored, nor logged, nor echoed.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response, status

from patron.auth.principal import Role
from patron.customers.service import CustomerService
from patron.errors import InvalidInput
from patron.http.scope import RequestContext, Scope
from patron.kit import rawbody
from patron.kit.cards import find_card_number
from patron.kit.keyset import Window
from patron.kit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from patron.payment_methods.schemas import (
    PaymentMethodCreate,
    PaymentMethodPage,
    PaymentMethodRead,
)
from patron.payment_methods.service import PaymentMethodService

router = APIRouter(prefix="/customers/{customer_id}/payment-methods", tags=["payment methods"])

OWNERS = Scope(Role.ADMIN, Role.MANAGER, Role.SERVICE, customer_self=True)


def customers(ctx: RequestContext) -> CustomerService:
    return CustomerService(ctx)


def service(ctx: RequestContext) -> PaymentMethodService:
    return PaymentMethodService(
        session=ctx.session,
        tenant=ctx.tenant,
        keyring=ctx.app.keyring,
        customers=customers(ctx),
    )


def reject_card_numbers(payload: Any) -> None:
    """422 when any value (or key) of the body contains a card number; the problem names
    the field only (:func:`patron.kit.cards.find_card_number`)."""
    where = find_card_number(payload)
    if where is not None:
        raise InvalidInput(
            "a card number is not accepted here: send the payment provider's token",
            loc=["body", *where],
            type="card_number_refused",
        )


@router.get("", response_model=PaymentMethodPage, summary="List a customer's payment methods")
async def list_payment_methods(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(OWNERS, scope="function")],
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> PaymentMethodPage:
    found, items = await service(ctx).list_page(customer_id, Window(page, page_size, cursor))
    return PaymentMethodPage(
        payment_methods=items,
        **found.envelope(),
    )


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
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(OWNERS, scope="function")],
    payload: Annotated[dict[str, Any], Body()],
) -> PaymentMethodRead:
    reject_card_numbers(payload)
    svc = service(ctx)
    await svc.customers.require(customer_id)
    body = rawbody.parse(PaymentMethodCreate, payload)
    return await svc.add(customer_id, body)


@router.delete(
    "/{pm_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a payment method",
)
async def remove_payment_method(
    customer_id: uuid.UUID,
    pm_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(OWNERS, scope="function")],
) -> Response:
    await service(ctx).remove(customer_id, pm_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""Errors of the payment methods domain, rendered by the one problem+json handler."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from patron.errors import InvalidInput, NotFound
from patron.kit.cards import CARD_NUMBER_REFUSED


class PaymentMethodNotFound(NotFound):
    """404: no payment method with this id on this customer of the tenant (also another
    tenant's or another customer's, so its existence is not revealed)."""

    def __init__(self, pm_id: uuid.UUID) -> None:
        super().__init__("payment method not found", payment_method_id=str(pm_id))


class CardNumberRefused(InvalidInput):
    """422 (``type`` ``card_number_refused``): a body carries a full card number somewhere
    (ARCHITECTURE.md "Data": full card numbers are never accepted). ``where`` is the path
    of the field inside the body; the value itself is never echoed."""

    def __init__(self, where: Sequence[str | int]) -> None:
        super().__init__(
            "a card number is not accepted here: send the payment provider's token",
            loc=["body", *where],
            type=CARD_NUMBER_REFUSED,
        )


class ForeignBillingAddress(InvalidInput):
    """422: ``billing_address_id`` names no address of this customer."""

    def __init__(self) -> None:
        super().__init__(
            "billing_address_id is not an address of this customer",
            loc=["body", "billing_address_id"],
        )

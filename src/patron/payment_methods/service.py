"""Payment method use cases: tokenized references only, one default per customer.

The provider reference is encrypted at rest (``Keyring.encrypt`` bound to the column) and
never returned or put in an event in full: responses and events carry the masked form.
Every operation owns its unit of work (:mod:`patron.usecases`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from patron.addresses.service import AddressService
from patron.customers.subresources import CustomerSubresourceService
from patron.events import outbox
from patron.events.types import EventType
from patron.kit import rawbody
from patron.kit.cards import find_card_number
from patron.kit.crypto import Keyring
from patron.kit.keyset import Window
from patron.models import PaymentMethod
from patron.payment_methods.errors import (
    CardNumberRefused,
    ForeignBillingAddress,
    PaymentMethodNotFound,
)
from patron.payment_methods.repository import PaymentMethodRepository
from patron.payment_methods.schemas import (
    MethodType,
    PaymentMethodCreate,
    PaymentMethodPage,
    PaymentMethodRead,
    mask_reference,
)
from patron.usecases import reads, writes

REFERENCE_CONTEXT = b"payment_methods.provider_reference"


def reject_card_numbers(payload: Any) -> None:
    """Raise :class:`CardNumberRefused` (422) when any value (or key) of ``payload``
    contains a card number; the problem names the field only
    (:func:`patron.kit.cards.find_card_number`)."""
    where = find_card_number(payload)
    if where is not None:
        raise CardNumberRefused(where)


class PaymentMethodService(CustomerSubresourceService):
    """Payment method use cases for one caller (:class:`patron.usecases.ServiceContext`)."""

    @property
    def repo(self) -> PaymentMethodRepository:
        return PaymentMethodRepository(self.session, self.tenant)

    @property
    def keyring(self) -> Keyring:
        return self.app.keyring

    def read(self, row: PaymentMethod) -> PaymentMethodRead:
        """The response shape of ``row``, with the provider reference decrypted and masked."""
        reference = self.keyring.decrypt(row.provider_reference_encrypted, REFERENCE_CONTEXT)
        return PaymentMethodRead(
            id=row.id,
            customer_id=row.customer_id,
            provider=row.provider,
            provider_reference=mask_reference(reference),
            method_type=MethodType(row.method_type),
            brand=row.brand,
            last4=row.last4,
            exp_month=row.exp_month,
            exp_year=row.exp_year,
            is_default=row.is_default,
            billing_address_id=row.billing_address_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @reads()
    async def list(self, customer_id: uuid.UUID, window: Window) -> PaymentMethodPage:
        """The customer's payment methods, newest first. Raises ``CustomerNotFound``."""
        found = await self.newest_of(
            customer_id, self.repo.of_customer(customer_id), PaymentMethod.created_at, window
        )
        return PaymentMethodPage(
            payment_methods=[self.read(row) for row in found.rows], **found.envelope()
        )

    @writes()
    async def add(self, customer_id: uuid.UUID, payload: Mapping[str, Any]) -> PaymentMethodRead:
        """Store a tokenized payment method from ``payload`` (the JSON object as sent);
        emits ``customer.payment_method_added``.

        Checked in this order, so no answer can echo a card number and an unknown customer
        is a 404 before the body is judged: card numbers anywhere in ``payload``
        (:class:`CardNumberRefused`, 422), the customer (``CustomerNotFound``), then the
        fields (:class:`PaymentMethodCreate`, 422). The customer row is locked, so
        concurrent additions of a default are serialised; a new default unsets the
        previous one in the same transaction (partial unique index
        ``uq_payment_methods_default``). ``billing_address_id`` must be an address of the
        same customer (:class:`ForeignBillingAddress`, 422).
        """
        reject_card_numbers(payload)
        await self.customers.require(customer_id, for_update=True)
        body = rawbody.parse(PaymentMethodCreate, dict(payload))
        if body.billing_address_id is not None and not await AddressService(self.ctx).exists(
            customer_id, body.billing_address_id
        ):
            raise ForeignBillingAddress
        repo = self.repo
        if body.is_default:
            await repo.clear_default(customer_id)
        values: dict[str, Any] = {
            "customer_id": customer_id,
            "provider": body.provider,
            "provider_reference_encrypted": self.keyring.encrypt(
                body.provider_reference, REFERENCE_CONTEXT
            ),
            "method_type": body.method_type.value,
            "brand": body.brand,
            "last4": body.last4,
            "exp_month": body.exp_month,
            "exp_year": body.exp_year,
            "is_default": body.is_default,
            "billing_address_id": body.billing_address_id,
        }
        created = self.read(await repo.insert(values))
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_PAYMENT_METHOD_ADDED,
            str(customer_id),
            {"customer_id": str(customer_id), "payment_method": created.model_dump(mode="json")},
        )
        return created

    @writes()
    async def remove(self, customer_id: uuid.UUID, pm_id: uuid.UUID) -> None:
        """Delete a payment method (the encrypted token goes with it); emits
        ``customer.payment_method_removed``. Raises ``CustomerNotFound``, or
        :class:`PaymentMethodNotFound` unless it belongs to the customer."""
        await self.customers.require(customer_id, for_update=True)
        repo = self.repo
        row = await repo.get(customer_id, pm_id)
        if row is None:
            raise PaymentMethodNotFound(pm_id)
        removed = self.read(row)
        await repo.delete(pm_id)
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_PAYMENT_METHOD_REMOVED,
            str(customer_id),
            {"customer_id": str(customer_id), "payment_method": removed.model_dump(mode="json")},
        )

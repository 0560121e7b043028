"""Payment method use cases: tokenized references only, one default per customer.

The provider reference is encrypted at rest (``Keyring.encrypt`` bound to the column) and
never returned or put in an event in full: responses and events carry the masked form.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from patron.customers.service import CustomerService
from patron.errors import InvalidInput, NotFound
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.crypto import Keyring
from patron.kit.keyset import Slice, Window, newest_first
from patron.models import PaymentMethod
from patron.payment_methods.repository import PaymentMethodRepository
from patron.payment_methods.schemas import (
    MethodType,
    PaymentMethodCreate,
    PaymentMethodRead,
    mask_reference,
)
from patron.tenancy import TenantId

REFERENCE_CONTEXT = b"payment_methods.provider_reference"


@dataclass
class PaymentMethodService:
    """Payment methods of one tenant inside one unit of work."""

    session: AsyncSession
    tenant: TenantId
    keyring: Keyring
    customers: CustomerService

    def __post_init__(self) -> None:
        self.repo = PaymentMethodRepository(self.session, self.tenant)

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

    async def list_page(
        self, customer_id: uuid.UUID, window: Window
    ) -> tuple[Slice, list[PaymentMethodRead]]:
        """The customer's payment methods, newest first (404 for an unknown customer)."""
        await self.customers.require(customer_id)
        found = await newest_first(
            self.session,
            self.repo.of_customer(customer_id),
            PaymentMethod.created_at,
            PaymentMethod.id,
            window,
        )
        return found, [self.read(row) for row in found.rows]

    async def add(self, customer_id: uuid.UUID, body: PaymentMethodCreate) -> PaymentMethodRead:
        """Store a tokenized payment method; emits ``customer.payment_method_added``.

        The customer row is locked first, so concurrent additions of a default are
        serialised; a new default unsets the previous one in the same transaction (partial
        unique index ``uq_payment_methods_default``). ``billing_address_id`` must be an
        address of the same customer (422 otherwise).
        """
        await self.customers.require(customer_id, for_update=True)
        if body.billing_address_id is not None and not await self.repo.address_belongs_to(
            body.billing_address_id, customer_id
        ):
            raise InvalidInput(
                "billing_address_id is not an address of this customer",
                loc=["body", "billing_address_id"],
            )
        if body.is_default:
            await self.repo.clear_default(customer_id)
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
        created = self.read(await self.repo.insert(values))
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_PAYMENT_METHOD_ADDED,
            str(customer_id),
            {"customer_id": str(customer_id), "payment_method": created.model_dump(mode="json")},
        )
        return created

    async def remove(self, customer_id: uuid.UUID, pm_id: uuid.UUID) -> None:
        """Delete a payment method (the encrypted token goes with it); emits
        ``customer.payment_method_removed``. 404 unless it belongs to the customer."""
        await self.customers.require(customer_id, for_update=True)
        row = await self.repo.get(customer_id, pm_id)
        if row is None:
            raise NotFound("payment method not found", payment_method_id=str(pm_id))
        removed = self.read(row)
        await self.repo.delete(pm_id)
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_PAYMENT_METHOD_REMOVED,
            str(customer_id),
            {"customer_id": str(customer_id), "payment_method": removed.model_dump(mode="json")},
        )

"""Rows of ``payment_methods`` (and the one read of ``customer_addresses`` they need)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, insert, select, update

from patron.db.repository import TenantScopedRepository
from patron.models import CustomerAddress, PaymentMethod


class PaymentMethodRepository(TenantScopedRepository[PaymentMethod]):
    model = PaymentMethod

    def of_customer(self, customer_id: uuid.UUID) -> Any:
        """``SELECT`` of the customer's payment methods (for listing)."""
        return self.select().where(PaymentMethod.customer_id == customer_id)

    async def get(self, customer_id: uuid.UUID, pm_id: uuid.UUID) -> PaymentMethod | None:
        found: PaymentMethod | None = await self.session.scalar(
            self.of_customer(customer_id).where(PaymentMethod.id == pm_id)
        )
        return found

    async def clear_default(self, customer_id: uuid.UUID) -> None:
        """Unset the customer's current default (before a new one is set)."""
        await self.session.execute(
            self.scoped(
                update(PaymentMethod)
                .where(PaymentMethod.customer_id == customer_id, PaymentMethod.is_default)
                .values(is_default=False)
            )
        )

    async def insert(self, values: dict[str, Any]) -> PaymentMethod:
        row: PaymentMethod = (
            await self.session.scalars(
                insert(PaymentMethod).values(self.stamp(values)).returning(PaymentMethod)
            )
        ).one()
        return row

    async def delete(self, pm_id: uuid.UUID) -> None:
        await self.session.execute(
            self.scoped(delete(PaymentMethod).where(PaymentMethod.id == pm_id))
        )

    async def address_belongs_to(self, address_id: uuid.UUID, customer_id: uuid.UUID) -> bool:
        """Whether ``address_id`` is an address of ``customer_id`` in this tenant.

        A direct read of ``customer_addresses`` (scoped by tenant here) rather than a call to
        the addresses service, which is being built alongside this domain; switch to
        ``AddressService`` once it offers such a check.
        """
        stmt = self.scoped(
            select(CustomerAddress.id).where(
                CustomerAddress.id == address_id, CustomerAddress.customer_id == customer_id
            ),
            CustomerAddress,
        )
        return (await self.session.scalar(stmt)) is not None

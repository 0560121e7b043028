"""Rows of ``payment_methods``."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, insert, update

from patron.db.repository import TenantScopedRepository
from patron.models import PaymentMethod


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

"""Rows of ``customer_communications``."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert

from patron.db.repository import TenantScopedRepository
from patron.models import CustomerCommunication


class CommunicationRepository(TenantScopedRepository[CustomerCommunication]):
    model = CustomerCommunication

    def of_customer(self, customer_id: uuid.UUID) -> Any:
        """``SELECT`` of the customer's communications (for listing)."""
        return self.select().where(CustomerCommunication.customer_id == customer_id)

    async def by_external_id(
        self, customer_id: uuid.UUID, channel: str, external_id: str
    ) -> CustomerCommunication | None:
        found: CustomerCommunication | None = await self.session.scalar(
            self.of_customer(customer_id)
            .where(
                CustomerCommunication.channel == channel,
                CustomerCommunication.external_id == external_id,
            )
            .order_by(CustomerCommunication.id)
            .limit(1)
        )
        return found

    async def insert(self, values: dict[str, Any]) -> CustomerCommunication:
        row: CustomerCommunication = (
            await self.session.scalars(
                insert(CustomerCommunication)
                .values(self.stamp(values))
                .returning(CustomerCommunication)
            )
        ).one()
        return row

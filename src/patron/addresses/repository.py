"""Queries on ``customer_addresses``."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, delete, update

from patron.db.repository import TenantScopedRepository
from patron.models import CustomerAddress

A = CustomerAddress


class AddressRepository(TenantScopedRepository[CustomerAddress]):
    model = CustomerAddress

    def of_customer(self, customer_id: uuid.UUID) -> Select[Any]:
        """``SELECT`` of a customer's addresses (unordered; the caller pages it)."""
        return self.select().where(A.customer_id == customer_id)

    async def get(self, customer_id: uuid.UUID, address_id: uuid.UUID) -> CustomerAddress | None:
        stmt = self.of_customer(customer_id).where(A.id == address_id)
        found: CustomerAddress | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def clear_default(
        self, customer_id: uuid.UUID, address_type: str, keep: uuid.UUID | None
    ) -> None:
        """Unset the default address of ``address_type`` (other than ``keep``): runs before
        the new default is written, so the partial unique index never sees two."""
        stmt = update(A).where(
            A.customer_id == customer_id, A.address_type == address_type, A.is_default
        )
        if keep is not None:
            stmt = stmt.where(A.id != keep)
        await self.session.execute(
            self.scoped(stmt.values(is_default=False)).execution_options(synchronize_session=False)
        )

    async def remove(self, address: CustomerAddress) -> None:
        await self.session.execute(self.scoped(delete(A).where(A.id == address.id)))

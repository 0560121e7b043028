"""Queries on ``customer_documents`` (always scoped to the tenant)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete

from patron.db.repository import TenantScopedRepository
from patron.kit.keyset import Slice, Window, newest_first
from patron.models.customer_document import CustomerDocument as D


class DocumentRepository(TenantScopedRepository[D]):
    model = D

    async def page(self, customer_id: uuid.UUID, window: Window) -> Slice:
        """The customer's documents, newest first."""
        stmt = self.select().where(D.customer_id == customer_id)
        return await newest_first(self.session, stmt, D.created_at, D.id, window)

    async def get(
        self, customer_id: uuid.UUID, document_id: uuid.UUID, *, for_update: bool = False
    ) -> D | None:
        """One document of the customer, or None (also for another tenant's)."""
        stmt = self.select().where(D.customer_id == customer_id, D.id == document_id)
        if for_update:
            stmt = stmt.with_for_update()
        found: D | None = (await self.session.scalars(stmt)).first()
        return found

    async def holder(self, type_: str, country: str, number_index: str) -> uuid.UUID | None:
        """The customer holding (type, issuing_country, number), if any."""
        stmt = self.select(D.customer_id).where(
            D.type == type_, D.issuing_country == country, D.number_index == number_index
        )
        found: Any = (await self.session.execute(stmt)).scalar()
        return found if found is None else uuid.UUID(str(found))

    async def remove(self, document_id: uuid.UUID) -> None:
        await self.session.execute(self.scoped(delete(D).where(D.id == document_id)))

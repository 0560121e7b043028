"""Queries on ``customer_notes``."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, delete

from patron.db.repository import TenantScopedRepository
from patron.models import CustomerNote

N = CustomerNote


class NoteRepository(TenantScopedRepository[CustomerNote]):
    model = CustomerNote

    def of_customer(self, customer_id: uuid.UUID) -> Select[Any]:
        return self.select().where(N.customer_id == customer_id)

    async def get(self, customer_id: uuid.UUID, note_id: uuid.UUID) -> CustomerNote | None:
        stmt = self.of_customer(customer_id).where(N.id == note_id)
        found: CustomerNote | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def remove(self, note: CustomerNote) -> None:
        await self.session.execute(self.scoped(delete(N).where(N.id == note.id)))

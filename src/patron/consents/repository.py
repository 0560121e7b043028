"""Rows of ``customer_consents``: INSERT and SELECT only (the table is append-only; the
application role has no UPDATE or DELETE on it)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import distinct_on

from patron.db.repository import TenantScopedRepository
from patron.models import CustomerConsent


class ConsentRepository(TenantScopedRepository[CustomerConsent]):
    model = CustomerConsent

    def of_customer(self, customer_id: uuid.UUID) -> Any:
        """``SELECT`` of the customer's ledger entries."""
        return self.select().where(CustomerConsent.customer_id == customer_id)

    async def current(
        self, customer_id: uuid.UUID, purpose: str | None = None
    ) -> list[CustomerConsent]:
        """The latest entry per purpose (by ``captured_at``, ties broken by id)."""
        stmt = (
            self.of_customer(customer_id)
            .ext(distinct_on(CustomerConsent.purpose))
            .order_by(
                CustomerConsent.purpose,
                CustomerConsent.captured_at.desc(),
                CustomerConsent.id.desc(),
            )
        )
        if purpose is not None:
            stmt = stmt.where(CustomerConsent.purpose == purpose)
        return list((await self.session.scalars(stmt)).all())

    async def insert(self, values: dict[str, Any]) -> CustomerConsent:
        row: CustomerConsent = (
            await self.session.scalars(
                insert(CustomerConsent).values(self.stamp(values)).returning(CustomerConsent)
            )
        ).one()
        return row

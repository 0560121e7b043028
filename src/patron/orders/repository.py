"""Queries on ``customer_orders``, ``customer_appointments``, the stats tables and
``inbox_messages``. Every statement goes through the tenant-scoped repository base."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from patron.db.repository import TenantScopedRepository
from patron.models import (
    CustomerAppointment,
    CustomerCurrencyStats,
    CustomerOrder,
    CustomerStats,
    InboxMessage,
)
from patron.orders.schemas import (
    COUNTED_APPOINTMENT_STATUSES,
    COUNTED_ORDER_STATUSES,
    REALISED_ORDER_STATUSES,
)

OR = CustomerOrder
A = CustomerAppointment
S = CustomerStats
CS = CustomerCurrencyStats


class OrderRepository(TenantScopedRepository[CustomerOrder]):
    """``customer_orders`` of one tenant."""

    model = CustomerOrder

    def of_customer(self, customer_id: uuid.UUID) -> Select[Any]:
        """``SELECT`` of one customer's orders (for lists)."""
        return self.select().where(OR.customer_id == customer_id)

    async def get(self, order_id: str) -> CustomerOrder | None:
        """The order with this external id in the tenant (any customer)."""
        found: CustomerOrder | None = (
            await self.session.execute(self.select().where(OR.order_id == order_id))
        ).scalar_one_or_none()
        return found

    async def insert(self, values: dict[str, Any]) -> CustomerOrder | None:
        """Insert an order; None when the tenant already has its ``order_id`` (a concurrent
        recording for another customer won the race)."""
        stmt = (
            pg_insert(OR)
            .values(self.stamp(values))
            .on_conflict_do_nothing(index_elements=[OR.tenant_id, OR.order_id])
            .returning(OR)
        )
        found: CustomerOrder | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def update(self, row_id: uuid.UUID, values: dict[str, Any]) -> CustomerOrder:
        """Set ``values`` on the order row ``row_id``; returns the row as updated."""
        stmt = self.scoped(
            update(OR).where(OR.id == row_id).values(**values, updated_at=func.now()).returning(OR)
        )
        row: CustomerOrder = (
            await self.session.execute(
                stmt, execution_options={"synchronize_session": False, "populate_existing": True}
            )
        ).scalar_one()
        return row

    async def totals_by_currency(self, customer_id: uuid.UUID) -> Sequence[Any]:
        """Per currency, over the orders that count: ``currency, orders, spent, realised,
        first_at, last_at`` (exact ``numeric`` sums)."""
        realised = [s.value for s in REALISED_ORDER_STATUSES]
        stmt = (
            self.select(
                OR.currency,
                func.count().label("orders"),
                func.coalesce(func.sum(OR.total), 0).label("spent"),
                func.coalesce(func.sum(OR.total).filter(OR.status.in_(realised)), 0).label(
                    "realised"
                ),
                func.min(OR.placed_at).label("first_at"),
                func.max(OR.placed_at).label("last_at"),
            )
            .where(
                OR.customer_id == customer_id,
                OR.status.in_([s.value for s in COUNTED_ORDER_STATUSES]),
            )
            .group_by(OR.currency)
        )
        return list((await self.session.execute(stmt)).all())


class AppointmentRepository(TenantScopedRepository[CustomerAppointment]):
    """``customer_appointments`` of one tenant."""

    model = CustomerAppointment

    def of_customer(self, customer_id: uuid.UUID) -> Select[Any]:
        """``SELECT`` of one customer's appointments (for lists)."""
        return self.select().where(A.customer_id == customer_id)

    async def get(self, appointment_id: str) -> CustomerAppointment | None:
        """The appointment with this external id in the tenant (any customer)."""
        found: CustomerAppointment | None = (
            await self.session.execute(self.select().where(A.appointment_id == appointment_id))
        ).scalar_one_or_none()
        return found

    async def insert(self, values: dict[str, Any]) -> CustomerAppointment | None:
        """Insert an appointment; None when its ``appointment_id`` is already taken."""
        stmt = (
            pg_insert(A)
            .values(self.stamp(values))
            .on_conflict_do_nothing(index_elements=[A.tenant_id, A.appointment_id])
            .returning(A)
        )
        found: CustomerAppointment | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def update(self, row_id: uuid.UUID, values: dict[str, Any]) -> CustomerAppointment:
        """Set ``values`` on the appointment row ``row_id``; returns the row as updated."""
        stmt = self.scoped(
            update(A).where(A.id == row_id).values(**values, updated_at=func.now()).returning(A)
        )
        row: CustomerAppointment = (
            await self.session.execute(
                stmt, execution_options={"synchronize_session": False, "populate_existing": True}
            )
        ).scalar_one()
        return row

    async def totals(self, customer_id: uuid.UUID) -> Any:
        """``appointments, last_at`` over the appointments that count."""
        stmt = self.select(
            func.count().label("appointments"), func.max(A.starts_at).label("last_at")
        )
        stmt = stmt.where(
            A.customer_id == customer_id,
            A.status.in_([s.value for s in COUNTED_APPOINTMENT_STATUSES]),
        )
        return (await self.session.execute(stmt)).one()


class StatsRepository(TenantScopedRepository[CustomerStats]):
    """``customer_stats`` (tenant currency) and ``customer_currency_stats`` of one tenant."""

    model = CustomerStats

    async def lock(self, customer_id: uuid.UUID, currency: str, *, create: bool = True) -> None:
        """Lock the customer's stats row (``FOR UPDATE``) until the transaction ends,
        creating it first (zeros in ``currency``) unless ``create`` is False: every change
        to a customer's orders, appointments or stats takes this lock first, so concurrent
        recordings for one customer serialise."""
        if create:
            await self.session.execute(
                pg_insert(S)
                .values(self.stamp({"customer_id": customer_id, "currency": currency}))
                .on_conflict_do_nothing(index_elements=[S.customer_id])
            )
        await self.session.execute(
            self.select(S.customer_id).where(S.customer_id == customer_id).with_for_update()
        )

    async def get(self, customer_id: uuid.UUID) -> CustomerStats | None:
        """The customer's stats row, if any."""
        found: CustomerStats | None = (
            await self.session.execute(self.select().where(S.customer_id == customer_id))
        ).scalar_one_or_none()
        return found

    async def others(self, customer_id: uuid.UUID) -> list[CustomerCurrencyStats]:
        """The customer's other-currency rows, by currency code."""
        stmt = self.scoped(
            select(CS).where(CS.customer_id == customer_id).order_by(CS.currency), CS
        )
        return list((await self.session.scalars(stmt)).all())

    async def write(
        self, customer_id: uuid.UUID, main: dict[str, Any], others: list[dict[str, Any]]
    ) -> None:
        """Replace the customer's stats: ``main`` columns of ``customer_stats`` and one
        ``customer_currency_stats`` row per entry of ``others``."""
        await self.session.execute(
            self.scoped(
                update(S)
                .where(S.customer_id == customer_id)
                .values(**main, updated_at=func.now())
                .execution_options(synchronize_session=False)
            )
        )
        await self.session.execute(
            self.scoped(delete(CS).where(CS.customer_id == customer_id), CS).execution_options(
                synchronize_session=False
            )
        )
        if others:
            await self.session.execute(
                insert(CS), [self.stamp({**o, "customer_id": customer_id}) for o in others]
            )

    async def customers_with_history(self) -> list[uuid.UUID]:
        """Every customer of the tenant with a stats row, an order or an appointment."""
        stmt = (
            self.select(S.customer_id)
            .union(
                self.scoped(select(OR.customer_id), OR),
                self.scoped(select(A.customer_id), A),
            )
            .order_by("customer_id")
        )
        return list((await self.session.scalars(stmt)).all())


class InboxRepository(TenantScopedRepository[InboxMessage]):
    """``inbox_messages`` of one tenant: ids of consumed broker messages."""

    model = InboxMessage

    async def claim(self, message_id: str, message_type: str) -> bool:
        """Record ``message_id`` as consumed; False if it already was. A concurrent claim of
        the same id waits for the first transaction and then returns False."""
        stmt = (
            pg_insert(InboxMessage)
            .values(
                self.stamp(
                    {"message_id": message_id, "message_type": message_type, "outcome": "claimed"}
                )
            )
            .on_conflict_do_nothing(
                index_elements=[InboxMessage.tenant_id, InboxMessage.message_id]
            )
            .returning(InboxMessage.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def set_outcome(self, message_id: str, outcome: str) -> None:
        """Record what processing the claimed message did (``recorded``, ``unchanged``)."""
        await self.session.execute(
            self.scoped(
                update(InboxMessage)
                .where(InboxMessage.message_id == message_id)
                .values(outcome=outcome, updated_at=func.now())
            )
        )

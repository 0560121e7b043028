"""Recording and listing a customer's orders (API.md "Orders, appointments, stats").

Recording is idempotent by ``order_id``: the first record creates the order, the same id
again changes it (only the fields sent), and a record that changes nothing changes nothing
(no stats write, no event). Every change recomputes the customer's stats and writes
``customer.order_recorded`` in the same unit of work (the operation's own, or the one it
joins), after locking the customer's stats row, so concurrent recordings for one customer
serialise and never lose an update.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from patron.customers.service import CustomerService
from patron.errors import InvalidInput
from patron.events import outbox
from patron.events.types import EventType
from patron.kit.keyset import Window, newest_first
from patron.kit.money import format_amount, minor_units
from patron.models import CustomerOrder
from patron.orders.errors import OrderTaken
from patron.orders.repository import OrderRepository
from patron.orders.schemas import CustomerStatsRead, OrderPage, OrderRead, OrderRecord, OrderStatus
from patron.orders.stats import StatsKeeper
from patron.usecases import Service, reads, writes

ReadT = TypeVar("ReadT")


@dataclass(frozen=True)
class Recorded(Generic[ReadT]):
    """What a recording did: ``created`` (new id), ``changed`` (anything written), and the
    API view of the row afterwards."""

    created: bool
    changed: bool
    read: ReadT


def order_read(row: CustomerOrder) -> OrderRead:
    """The API view of an order row (``total`` in the currency's precision)."""
    return OrderRead(
        id=row.id,
        customer_id=row.customer_id,
        order_id=row.order_id,
        total=format_amount(row.total, row.currency),
        currency=row.currency,
        status=OrderStatus(row.status),
        placed_at=row.placed_at,
        metadata=row.extra,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def check_precision(total: Decimal, currency: str) -> Decimal:
    """``total`` if it has no more decimals than ``currency``'s minor units (ISO 4217 via
    CLDR: 2 for USD, 0 for JPY); else 422 naming ``total``."""
    quantum = Decimal(1).scaleb(-minor_units(currency))
    if total != total.quantize(quantum):
        raise InvalidInput(
            f"total has more decimals than {currency} allows ({minor_units(currency)})",
            loc=["body", "total"],
        )
    return total


class HistoryService(Service):
    """Base of the order and appointment services: the customer domain and the stats
    keeper, built per call on the open unit of work."""

    @property
    def stats(self) -> StatsKeeper:
        return StatsKeeper(self.session, self.tenant, self.app.settings)

    @property
    def customers(self) -> CustomerService:
        return CustomerService(self.ctx)


class OrderService(HistoryService):
    """Order use cases (and a customer's stats) for one caller
    (:class:`patron.usecases.ServiceContext`)."""

    @property
    def repo(self) -> OrderRepository:
        return OrderRepository(self.session, self.tenant)

    @reads()
    async def customer_stats(self, customer_id: uuid.UUID) -> CustomerStatsRead:
        """The customer's stored stats (zeros before any history). Raises
        ``CustomerNotFound`` (404) unless a live customer."""
        await self.customers.require(customer_id)
        return (await self.stats.stored(customer_id)).read()

    @reads()
    async def list_orders(
        self, customer_id: uuid.UUID, window: Window, status: OrderStatus | None = None
    ) -> OrderPage:
        """A customer's orders, newest ``placed_at`` first. Raises ``CustomerNotFound``
        (404) unless a live customer."""
        await self.customers.require(customer_id)
        stmt = self.repo.of_customer(customer_id)
        if status is not None:
            stmt = stmt.where(CustomerOrder.status == status.value)
        found = await newest_first(
            self.session, stmt, CustomerOrder.placed_at, CustomerOrder.id, window
        )
        return OrderPage(orders=[order_read(r) for r in found.rows], **found.envelope())

    @writes()
    async def record(
        self,
        customer_id: uuid.UUID,
        body: OrderRecord,
        *,
        placed_default: datetime | None = None,
    ) -> Recorded[OrderRead]:
        """Create or update the order ``body.order_id`` of ``customer_id``.

        A new order without ``placed_at`` is placed at ``placed_default`` (an event's
        ``time``), else now.

        Raises ``CustomerNotFound`` (404) for an unknown customer, :class:`OrderTaken` (409)
        when the ``order_id`` belongs to another customer of the tenant, InvalidInput (422)
        for a new order without ``total`` or a total finer than its currency's minor unit.
        """
        await self.customers.require(customer_id)
        stats = self.stats
        await stats.lock(customer_id)
        sent = body.model_dump(exclude_unset=True)
        existing = await self.repo.get(body.order_id)
        if existing is not None and existing.customer_id != customer_id:
            raise OrderTaken(body.order_id)
        if existing is None:
            if body.total is None:
                raise InvalidInput("total is required for a new order", loc=["body", "total"])
            currency = body.currency or stats.currency
            row = await self.repo.insert(
                {
                    "customer_id": customer_id,
                    "order_id": body.order_id,
                    "total": check_precision(body.total, currency),
                    "currency": currency,
                    "status": (body.status or OrderStatus.PLACED).value,
                    "placed_at": body.placed_at or placed_default or datetime.now(UTC),
                    "extra": body.metadata or {},
                }
            )
            if row is None:
                raise OrderTaken(body.order_id)
            return await self._recorded(row, created=True, previous_status=None)
        changes = _changes(existing, sent)
        if "total" in changes or "currency" in changes:
            check_precision(
                Decimal(changes.get("total", existing.total)),
                changes.get("currency", existing.currency),
            )
        if not changes:
            return Recorded(created=False, changed=False, read=order_read(existing))
        previous = existing.status
        row = await self.repo.update(existing.id, changes)
        return await self._recorded(row, created=False, previous_status=previous)

    async def _recorded(
        self, row: CustomerOrder, *, created: bool, previous_status: str | None
    ) -> Recorded[OrderRead]:
        snapshot = await self.stats.refresh(row.customer_id)
        read = order_read(row)
        await outbox.record(
            self.session,
            self.tenant,
            EventType.CUSTOMER_ORDER_RECORDED,
            str(row.customer_id),
            {
                "customer_id": str(row.customer_id),
                "created": created,
                "previous_status": previous_status,
                "order": read.model_dump(mode="json"),
                "stats": snapshot.read().model_dump(mode="json"),
            },
        )
        return Recorded(created=created, changed=True, read=read)


def _changes(row: CustomerOrder, sent: dict[str, Any]) -> dict[str, Any]:
    """Columns that ``sent`` (body fields given) would change on ``row``."""
    wanted: dict[str, Any] = {}
    if sent.get("total") is not None:
        wanted["total"] = sent["total"]
    if sent.get("currency") is not None:
        wanted["currency"] = sent["currency"]
    if sent.get("status") is not None:
        wanted["status"] = OrderStatus(sent["status"]).value
    if sent.get("placed_at") is not None:
        wanted["placed_at"] = sent["placed_at"]
    if sent.get("metadata") is not None:
        wanted["extra"] = sent["metadata"]
    return {k: v for k, v in wanted.items() if getattr(row, k) != v}

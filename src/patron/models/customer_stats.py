"""``customer_stats`` and ``customer_currency_stats``: order and appointment aggregates per
customer, kept by the orders domain in the same transaction as each recorded change.

``customer_stats`` (one row per customer) holds the tenant's currency; orders in any other
currency are summed per currency in ``customer_currency_stats`` and never mixed in
(docs/decisions/0009-orders-stats-consumer.md).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import TenantMixin, TimestampMixin


class CustomerStats(TenantMixin, TimestampMixin, Base):
    """A customer's stats in the tenant currency (one row per customer; its row lock
    serialises changes to the customer's history)."""

    __tablename__ = "customer_stats"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    currency: Mapped[str | None] = mapped_column(String(3))
    total_orders: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    total_spent: Mapped[Decimal] = mapped_column(Numeric(20, 4), nullable=False, default=0)
    lifetime_value: Mapped[Decimal] = mapped_column(Numeric(20, 4), nullable=False, default=0)
    first_order_date: Mapped[date | None] = mapped_column(Date)
    last_order_date: Mapped[date | None] = mapped_column(Date)
    total_appointments: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_appointment_date: Mapped[date | None] = mapped_column(Date)


class CustomerCurrencyStats(TenantMixin, TimestampMixin, Base):
    """Order aggregates of one customer in one currency other than the tenant's."""

    __tablename__ = "customer_currency_stats"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    total_orders: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    total_spent: Mapped[Decimal] = mapped_column(Numeric(20, 4), nullable=False, default=0)
    lifetime_value: Mapped[Decimal] = mapped_column(Numeric(20, 4), nullable=False, default=0)
    first_order_date: Mapped[date | None] = mapped_column(Date)
    last_order_date: Mapped[date | None] = mapped_column(Date)

"""``customer_orders``: a customer's orders, recorded by the orders service (API or events).

``order_id`` is the orders service's own id, unique per tenant: recording it again updates
the row (API.md "Orders, appointments, stats").
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin


class CustomerOrder(IdMixin, TenantMixin, TimestampMixin, Base):
    """One order of a customer; ``extra`` is the API's ``metadata``."""

    __tablename__ = "customer_orders"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
    )
    order_id: Mapped[str] = mapped_column(String(200), nullable=False)
    # Numeric(20, 4): ISO 4217 minor units go up to 4 digits (CLF).
    total: Mapped[Decimal] = mapped_column(Numeric(20, 4), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # Free JSON object the orders service may attach (channel, item count, ...).
    extra: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)

    __table_args__ = (
        Index("uq_customer_orders_order_id", "tenant_id", "order_id", unique=True),
        Index("ix_customer_orders_customer", "tenant_id", "customer_id", "placed_at"),
        # customer_id first: cascaded deletes and merges look orders up by customer alone
        Index("ix_customer_orders_customer_id", "customer_id"),
    )

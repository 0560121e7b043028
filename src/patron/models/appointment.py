"""``customer_appointments``: a customer's appointments, recorded by the scheduling service.

``appointment_id`` is the scheduling service's own id, unique per tenant: recording it
again updates the row (API.md "Orders, appointments, stats").
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin


class CustomerAppointment(IdMixin, TenantMixin, TimestampMixin, Base):
    """One appointment of a customer; ``extra`` is the API's ``metadata``."""

    __tablename__ = "customer_appointments"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
    )
    appointment_id: Mapped[str] = mapped_column(String(200), nullable=False)
    service: Mapped[str] = mapped_column(String(200), nullable=False)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)

    __table_args__ = (
        Index(
            "uq_customer_appointments_appointment_id", "tenant_id", "appointment_id", unique=True
        ),
        Index("ix_customer_appointments_customer", "tenant_id", "customer_id", "starts_at"),
        Index("ix_customer_appointments_customer_id", "customer_id"),
    )

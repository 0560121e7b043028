"""``customer_communications``: the history of contacts with a customer."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin


class CustomerCommunication(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "customer_communications"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
    )
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    direction: Mapped[str] = mapped_column(String(8), nullable=False)
    subject: Mapped[str | None] = mapped_column(String(500))
    summary: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    recorded_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index(
            "ix_customer_communications_timeline", "tenant_id", "customer_id", "occurred_at", "id"
        ),
    )

"""``customer_notes``: staff notes on a customer (never shown to the customer)."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin


class CustomerNote(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "customer_notes"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
    )
    note: Mapped[str] = mapped_column(Text, nullable=False)
    author_id: Mapped[str] = mapped_column(String(200), nullable=False)

    __table_args__ = (
        Index("ix_customer_notes_customer", "tenant_id", "customer_id", "created_at"),
    )

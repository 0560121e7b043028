"""``payment_methods``: tokenized payment instruments (never card numbers)."""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin


class PaymentMethod(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "payment_methods"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
    )
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    provider_reference_encrypted: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    method_type: Mapped[str] = mapped_column(String(16), nullable=False)
    brand: Mapped[str | None] = mapped_column(String(32))
    last4: Mapped[str | None] = mapped_column(String(4))
    exp_month: Mapped[int | None] = mapped_column(Integer)
    exp_year: Mapped[int | None] = mapped_column(Integer)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    billing_address_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customer_addresses.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("ix_payment_methods_customer", "tenant_id", "customer_id"),
        Index(
            "uq_payment_methods_default",
            "tenant_id",
            "customer_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

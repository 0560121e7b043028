"""``customer_documents``: identity and business documents with their files.

The number is stored encrypted (AES-256-GCM) with its last four characters for display
and a keyed HMAC blind index for the uniqueness rule (type, issuing_country, number).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin


class CustomerDocument(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "customer_documents"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
    )
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    issuing_country: Mapped[str] = mapped_column(String(2), nullable=False)
    number_encrypted: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    number_last4: Mapped[str] = mapped_column(String(4), nullable=False)
    number_index: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="PENDING")
    storage_key: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(100))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_customer_documents_customer", "tenant_id", "customer_id"),
        Index(
            "uq_customer_documents_number",
            "tenant_id",
            "type",
            "issuing_country",
            "number_index",
            unique=True,
        ),
    )

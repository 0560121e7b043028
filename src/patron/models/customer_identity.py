"""``customer_identities``: the ways a customer is recognised (ARCHITECTURE.md §4).

``(tenant_id, kind, namespace, value)`` is unique among identities that are not released;
an identity is released when its customer is deleted or merged away, which keeps history
while letting a new customer use the same email.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin

# One live holder per identity and tenant (the unique index that decides races).
LIVE_IDENTITY_CONSTRAINT = "uq_customer_identities_live"


class CustomerIdentity(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "customer_identities"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    namespace: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    value: Mapped[str] = mapped_column(String(320), nullable=False)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index(
            LIVE_IDENTITY_CONSTRAINT,
            "tenant_id",
            "kind",
            "namespace",
            "value",
            unique=True,
            postgresql_where=text("released_at IS NULL"),
        ),
        Index("ix_customer_identities_customer_id", "tenant_id", "customer_id"),
    )

"""``tags`` (the tenant's catalog, labels unique case-insensitively) and ``customer_tags``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin


class Tag(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "tags"

    label: Mapped[str] = mapped_column(String(64), nullable=False)
    # casefold() of the label: the uniqueness key
    label_key: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (Index("uq_tags_label_key", "tenant_id", "label_key", unique=True),)


class CustomerTag(TenantMixin, Base):
    __tablename__ = "customer_tags"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    created_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_customer_tags_tag", "tenant_id", "tag_id"),)

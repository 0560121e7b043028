"""``inbox_messages``: broker messages already processed, for idempotent consumption.

The consumer inserts the message's id in the same transaction as its effects, so a
redelivered or republished message (at-least-once delivery) is recognised and skipped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin


class InboxMessage(IdMixin, TenantMixin, TimestampMixin, Base):
    """One consumed message, unique per tenant by the producer's message id."""

    __tablename__ = "inbox_messages"

    # The CloudEvents ``id`` of the message (the producer's, unique per source).
    message_id: Mapped[str] = mapped_column(String(200), nullable=False)
    message_type: Mapped[str] = mapped_column(String(100), nullable=False)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # What processing did: "recorded" (a change), "unchanged" (same data again).
    outcome: Mapped[str] = mapped_column(String(32), nullable=False)

    __table_args__ = (
        Index("uq_inbox_messages_message_id", "tenant_id", "message_id", unique=True),
        Index("ix_inbox_messages_received_at", "received_at"),
    )

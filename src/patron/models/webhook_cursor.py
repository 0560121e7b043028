"""``webhook_cursors``: how far the webhook fan-out has read the outbox feed (not a tenant
table: one row, ``name = 'fanout'``, for every tenant's events).

The position is a :class:`patron.events.feed.FeedPosition` (``xid``, ``seq``); both are
null before the first event. The fan-out locks the row, reads the feed after it, writes
the deliveries and moves the position in one transaction, so each event fans out once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String, text
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.outbox_event import Xid8

FANOUT_CURSOR = "fanout"


class WebhookCursor(Base):
    __tablename__ = "webhook_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    xid: Mapped[int | None] = mapped_column(Xid8())
    seq: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )

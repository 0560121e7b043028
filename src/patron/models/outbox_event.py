"""``outbox_events``: CloudEvents written in the same transaction as the change (§5)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from patron.db.base import Base
from patron.models.mixins import TenantMixin


class Xid8(UserDefinedType[int]):
    """PostgreSQL ``xid8``: a 64-bit transaction id (``pg_current_xact_id()``)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


ischema_names["xid8"] = Xid8  # so reflection (alembic check) knows the type


class OutboxEvent(TenantMixin, Base):
    __tablename__ = "outbox_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False, unique=True)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    source: Mapped[str] = mapped_column(String(200), nullable=False)
    subject: Mapped[str | None] = mapped_column(String(100))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    trace_id: Mapped[str | None] = mapped_column(Text)
    # the writing transaction: readers order by (xid, seq) (docs/decisions/0007)
    xid: Mapped[int] = mapped_column(
        Xid8(), nullable=False, server_default=text("pg_current_xact_id()")
    )
    # Relay state (docs/decisions/0007): the transports that confirmed the event; set
    # ``published_at`` once every transport the relays are configured with has.
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_to: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    # broker rejections so far; at RELAY_MAX_ATTEMPTS the event is dead-lettered
    attempts: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )

    __table_args__ = (
        Index("ix_outbox_events_tenant_id_seq", "tenant_id", "seq"),
        # the relay's claim: pending (neither published nor dead) events in seq order
        Index(
            "ix_outbox_events_pending",
            "seq",
            postgresql_where=text("published_at IS NULL AND dead_at IS NULL"),
        ),
        Index(
            "ix_outbox_events_tenant_id_dead_at",
            "tenant_id",
            "dead_at",
            postgresql_where=text("dead_at IS NOT NULL"),
        ),
        Index("ix_outbox_events_xid_seq", "xid", "seq"),
        Index("ix_outbox_events_tenant_id_xid_seq", "tenant_id", "xid", "seq"),
    )

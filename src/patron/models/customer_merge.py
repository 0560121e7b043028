"""``customer_merges``: the journal of merges, so that each one can be explained later."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin


class CustomerMerge(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "customer_merges"

    survivor_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    source_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    # What moved and what was dropped: {"identities": [...], "tags": [...], "fields": {...}}
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)

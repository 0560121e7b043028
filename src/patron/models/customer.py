"""``customers``: one row per customer of a tenant."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Computed,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin

# Expression of the trigram search document; `patron_unaccent` is an immutable wrapper of
# unaccent() created by the migration (unaccent itself is only STABLE).
SEARCH_DOCUMENT_SQL = (
    "patron_unaccent(lower("
    "coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || "
    "coalesce(email, '') || ' ' || coalesce(phone, '') || ' ' || coalesce(psid, '') || ' ' || "
    "coalesce(igsid, '')))"
)


class Customer(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "customers"

    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    gender: Mapped[str | None] = mapped_column(String(32))
    birth_date: Mapped[date | None] = mapped_column(Date)
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    avatar_url: Mapped[str | None] = mapped_column(Text)
    avatar_storage_key: Mapped[str | None] = mapped_column(Text)
    profile_pic_url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="ACTIVE")
    customer_type: Mapped[str] = mapped_column(String(16), nullable=False, default="RETAIL")
    platform: Mapped[str | None] = mapped_column(String(16))
    app_id: Mapped[str | None] = mapped_column(String(128))
    psid: Mapped[str | None] = mapped_column(String(128))
    igsid: Mapped[str | None] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(String(128))
    external_ids: Mapped[dict[str, str]] = mapped_column(JSONB, nullable=False, default=dict)
    access_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    marketing_opt_in: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    last_interaction_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    blocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    block_reason: Mapped[str | None] = mapped_column(Text)
    profile_fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column()
    search_document: Mapped[str] = mapped_column(
        Text, Computed(SEARCH_DOCUMENT_SQL, persisted=True), nullable=False
    )

    __table_args__ = (
        Index("ix_customers_tenant_id_created_at", "tenant_id", "created_at", "id"),
        Index("ix_customers_tenant_id_updated_at", "tenant_id", "updated_at", "id"),
        # tenant and trigrams in one GIN index (btree_gin): a search's matches come from
        # one index scan instead of a BitmapAnd with the whole tenant (migration 0007)
        Index(
            "ix_customers_tenant_id_search_document_trgm",
            "tenant_id",
            "search_document",
            postgresql_using="gin",
            postgresql_ops={"search_document": "gin_trgm_ops"},
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

"""``channels``: a Meta app and a Facebook page or Instagram business account tied to a
tenant (API.md "Channels").

``page_id`` is the Facebook page id (``platform = 'facebook'``) or the Instagram business
account id (``'instagram'``): the ``entry[].id`` of Meta's webhooks, which is how an
incoming webhook finds its tenant. So ``(platform, page_id)`` is unique across *all*
tenants (``uq_channels_platform_page_id``), the one unique index here without
``tenant_id`` (docs/decisions/0018-channel-lookup.md says why and what it costs).

The page access token and the optional app secret are stored only encrypted
(``kit.crypto.Keyring``, contexts ``b"channels.access_token"`` and
``b"channels.app_secret"``). ``status`` is ``active`` or ``needs_attention`` (a token
found dead; ``status_reason`` says why). Platform and status are checked by the API,
not by CHECK constraints, like the other tables' enumerations.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin

CHANNEL_ACTIVE = "active"
CHANNEL_NEEDS_ATTENTION = "needs_attention"
PAGE_UNIQUE = "uq_channels_platform_page_id"


class Channel(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "channels"

    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    app_id: Mapped[str] = mapped_column(String(64), nullable=False)
    page_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str | None] = mapped_column(String(200))
    access_token_encrypted: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    app_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(
        String(32), nullable=False, server_default=text(f"'{CHANNEL_ACTIVE}'")
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("platform", "page_id", name=PAGE_UNIQUE),
        Index("ix_channels_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_channels_tenant_id_platform_app_id", "tenant_id", "platform", "app_id"),
    )

"""``webhook_endpoints``: a tenant's receivers of signed outgoing webhooks (docs/webhooks.md).

The signing secret is stored only encrypted (``secret_encrypted``, AES-GCM with key id via
``kit.crypto.Keyring``, context ``b"webhook_endpoints.secret"``); it is shown once, when
the endpoint is created or its secret rotated. After a rotation the secret it replaced
(``previous_secret_encrypted``, same encryption) also signs deliveries until
``previous_secret_expires_at``; the two columns are both set or both null.
``consecutive_failures`` and ``failing_since`` track the current streak of failed
attempts; the dispatcher disables the endpoint when the streak is long enough
(docs/decisions/0008-webhook-deliveries.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin

ENDPOINT_ENABLED = "enabled"
ENDPOINT_DISABLED = "disabled"


class WebhookEndpoint(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(Text, nullable=False)
    # event types delivered; empty or containing "*" means every type
    event_types: Mapped[list[str]] = mapped_column(
        ARRAY(String(100)), nullable=False, server_default=text("'{}'")
    )
    description: Mapped[str | None] = mapped_column(String(500))
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    previous_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=text(f"'{ENDPOINT_ENABLED}'")
    )
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("0")
    )
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_webhook_endpoints_tenant_id_created_at", "tenant_id", "created_at"),
        CheckConstraint(
            "(previous_secret_encrypted IS NULL) = (previous_secret_expires_at IS NULL)",
            name="previous_secret_pair",
        ),
    )

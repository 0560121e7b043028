"""Queries on ``webhook_endpoints`` and ``webhook_deliveries`` for tenant requests.

The dispatcher works across tenants as ``patron_system`` and has its own statements
(``webhooks/dispatcher.py``).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, delete

from patron.db.repository import TenantScopedRepository
from patron.models import WebhookDelivery, WebhookEndpoint

E = WebhookEndpoint
D = WebhookDelivery


class WebhookEndpointRepository(TenantScopedRepository[WebhookEndpoint]):
    model = WebhookEndpoint

    def listing(self) -> Select[Any]:
        """Every endpoint of the tenant (ordered by the caller)."""
        return self.select()

    async def get(self, endpoint_id: uuid.UUID, *, for_update: bool = False) -> E | None:
        """The tenant's endpoint ``endpoint_id`` (row-locked with ``for_update``) or None."""
        stmt = self.select().where(E.id == endpoint_id)
        if for_update:
            stmt = stmt.with_for_update()
        found: E | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def remove(self, endpoint: E) -> None:
        """Delete the endpoint; its deliveries go with it (``ON DELETE CASCADE``)."""
        await self.session.execute(self.scoped(delete(E).where(E.id == endpoint.id)))


class WebhookDeliveryRepository(TenantScopedRepository[WebhookDelivery]):
    model = WebhookDelivery

    def of_endpoint(self, endpoint_id: uuid.UUID) -> Select[Any]:
        """Deliveries of one of the tenant's endpoints (ordered by the caller)."""
        return self.select().where(D.endpoint_id == endpoint_id)

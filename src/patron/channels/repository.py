"""Queries on ``channels`` for one tenant.

The look-up of a page's channel across tenants, before any tenant is known, runs as
``patron_system`` and has its own statement (:class:`patron.channels.service.ChannelDirectory`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, case, delete

from patron.db.repository import TenantScopedRepository
from patron.models import Channel
from patron.models.channel import CHANNEL_ACTIVE

C = Channel


class ChannelRepository(TenantScopedRepository[Channel]):
    model = Channel

    def listing(self) -> Select[Any]:
        """Every channel of the tenant (ordered by the caller)."""
        return self.select()

    async def get(self, channel_id: uuid.UUID, *, for_update: bool = False) -> Channel | None:
        """The tenant's channel ``channel_id`` (row-locked with ``for_update``) or None."""
        stmt = self.select().where(C.id == channel_id)
        if for_update:
            stmt = stmt.with_for_update()
        found: Channel | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def by_page(self, platform: str, page_id: str) -> Channel | None:
        """The tenant's channel of ``(platform, page_id)``, if this tenant holds it."""
        stmt = self.select().where(C.platform == platform, C.page_id == page_id)
        found: Channel | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def for_app(self, platform: str, app_id: str | None) -> Channel | None:
        """The channel whose token serves a customer of ``platform`` and ``app_id`` (any
        app when None): an active one first, then the oldest (a stable choice when one
        app has several pages in the tenant)."""
        stmt = self.select().where(C.platform == platform)
        if app_id is not None:
            stmt = stmt.where(C.app_id == app_id)
        stmt = stmt.order_by(
            case((C.status == CHANNEL_ACTIVE, 0), else_=1), C.created_at, C.id
        ).limit(1)
        found: Channel | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def remove(self, channel: Channel) -> None:
        """Delete the channel (a hard delete: its page may then join another tenant)."""
        await self.session.execute(self.scoped(delete(C).where(C.id == channel.id)))

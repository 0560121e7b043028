"""Queries on ``outbox_events`` for tenant requests (the relay has its own, cross-tenant)."""

from __future__ import annotations

import uuid

from sqlalchemy import update

from patron.db.repository import TenantScopedRepository
from patron.events.feed import FeedPosition, feed_query
from patron.models import OutboxEvent

E = OutboxEvent


class EventRepository(TenantScopedRepository[OutboxEvent]):
    model = OutboxEvent

    async def position(self, event_id: uuid.UUID) -> FeedPosition | None:
        """The feed position of this tenant's event ``event_id``; None if it has none."""
        stmt = self.select(E.xid, E.seq).where(E.id == event_id)
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else FeedPosition(xid=int(row.xid), seq=int(row.seq))

    async def feed(self, after: FeedPosition | None, limit: int) -> list[OutboxEvent]:
        """Up to ``limit`` final events of this tenant after ``after``, in feed order."""
        stmt = self.scoped(feed_query(after=after, limit=limit))
        return list((await self.session.execute(stmt)).scalars())

    async def get(self, event_id: uuid.UUID) -> OutboxEvent | None:
        stmt = self.select().where(E.id == event_id)
        found: OutboxEvent | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def dead_letters(self, after_seq: int | None, limit: int) -> list[OutboxEvent]:
        """Up to ``limit`` dead-lettered events of this tenant after ``after_seq`` (seq order)."""
        stmt = self.select().where(E.dead_at.is_not(None))
        if after_seq is not None:
            stmt = stmt.where(E.seq > after_seq)
        return list((await self.session.execute(stmt.order_by(E.seq).limit(limit))).scalars())

    async def requeue(self, event_id: uuid.UUID) -> bool:
        """Make a dead-lettered event pending again; False if it is not dead-lettered."""
        stmt = self.scoped(
            update(E)
            .where(E.id == event_id, E.dead_at.is_not(None))
            .values(
                published_at=None,
                attempts=0,
                next_attempt_at=None,
                last_error=None,
                dead_at=None,
            )
            .returning(E.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

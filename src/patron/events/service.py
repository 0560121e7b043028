"""Use cases of the events API: read the feed, list and requeue dead letters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from patron.errors import Conflict, InvalidInput, NotFound
from patron.events.outbox import to_cloudevent
from patron.events.repository import EventRepository
from patron.events.schemas import (
    CloudEvent,
    DeadLetter,
    DeadLetterPage,
    EventPage,
    RequeueResult,
)
from patron.models import OutboxEvent
from patron.tenancy import TenantId


def _cloudevent(row: OutboxEvent) -> CloudEvent:
    return CloudEvent.model_validate(to_cloudevent(row))


@dataclass
class EventService:
    session: AsyncSession
    tenant: TenantId

    @property
    def repo(self) -> EventRepository:
        return EventRepository(self.session, self.tenant)

    async def feed(self, after: uuid.UUID | None, limit: int) -> EventPage:
        """The tenant's events after the event ``after`` in feed order ((xid, seq), see
        ``events/feed.py``). Raises :class:`InvalidInput` (422, ``loc`` query.after) when
        ``after`` is not one of this tenant's events."""
        position = None
        if after is not None:
            position = await self.repo.position(after)
            if position is None:
                raise InvalidInput(
                    "after is not the id of an event of this tenant", loc=["query", "after"]
                )
        rows = await self.repo.feed(position, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return EventPage(
            events=[_cloudevent(r) for r in rows],
            next_cursor=str(rows[-1].id) if more else None,
        )

    async def dead_letters(self, after: uuid.UUID | None, limit: int) -> DeadLetterPage:
        """Dead-lettered events, oldest first, after the dead letter ``after`` (422 if
        ``after`` is not one of this tenant's events)."""
        after_seq = None
        if after is not None:
            event = await self.repo.get(after)
            if event is None:
                raise InvalidInput(
                    "after is not the id of an event of this tenant", loc=["query", "after"]
                )
            after_seq = event.seq
        rows = await self.repo.dead_letters(after_seq, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        items = [
            DeadLetter(
                event=_cloudevent(r),
                attempts=r.attempts,
                last_error=r.last_error,
                dead_at=r.dead_at,
            )
            for r in rows
        ]
        return DeadLetterPage(dead_letters=items, next_cursor=str(rows[-1].id) if more else None)

    async def requeue(self, event_id: uuid.UUID) -> RequeueResult:
        """Make a dead-lettered event pending again. Raises :class:`NotFound` (404) for an
        unknown event and :class:`Conflict` (409) for one that is not dead-lettered."""
        if await self.repo.requeue(event_id):
            return RequeueResult(id=event_id, status="pending")
        if await self.repo.get(event_id) is None:
            raise NotFound("event not found")
        raise Conflict("the event is not dead-lettered")

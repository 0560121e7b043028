"""Use cases of the events API: read the feed, list and requeue dead letters. Each owns
its unit of work (:mod:`patron.usecases`)."""

from __future__ import annotations

import uuid

from patron.events.errors import EventNotDeadLettered, EventNotFound, UnknownAfter
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
from patron.usecases import Service, reads, writes


def _cloudevent(row: OutboxEvent) -> CloudEvent:
    return CloudEvent.model_validate(to_cloudevent(row))


class EventService(Service):
    """Event feed and dead-letter use cases for one caller
    (:class:`patron.usecases.ServiceContext`)."""

    @property
    def repo(self) -> EventRepository:
        return EventRepository(self.session, self.tenant)

    @reads()
    async def feed(self, after: uuid.UUID | None, limit: int) -> EventPage:
        """The tenant's events after the event ``after`` in feed order ((xid, seq), see
        ``events/feed.py``). Raises :class:`UnknownAfter` (422, ``loc`` query.after) when
        ``after`` is not one of this tenant's events."""
        position = None
        if after is not None:
            position = await self.repo.position(after)
            if position is None:
                raise UnknownAfter
        rows = await self.repo.feed(position, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return EventPage(
            events=[_cloudevent(r) for r in rows],
            next_cursor=str(rows[-1].id) if more else None,
        )

    @reads()
    async def dead_letters(self, after: uuid.UUID | None, limit: int) -> DeadLetterPage:
        """Dead-lettered events, oldest first, after the dead letter ``after`` (422 if
        ``after`` is not one of this tenant's events)."""
        after_seq = None
        if after is not None:
            event = await self.repo.get(after)
            if event is None:
                raise UnknownAfter
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

    @writes()
    async def requeue(self, event_id: uuid.UUID) -> RequeueResult:
        """Make a dead-lettered event pending again. Raises :class:`EventNotFound` (404) for
        an unknown event and :class:`EventNotDeadLettered` (409) for one that is not."""
        if await self.repo.requeue(event_id):
            return RequeueResult(id=event_id, status="pending")
        if await self.repo.get(event_id) is None:
            raise EventNotFound
        raise EventNotDeadLettered

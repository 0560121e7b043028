"""HTTP routes of the event feed (API.md: ``GET /api/v1/events``, admin and service).

The feed is also how events are consumed with no broker configured (ARCHITECTURE.md §2).
Dead letters (events the relay gave up on) are listed at ``/events/dead-letters`` and
requeued by an admin with ``POST /events/{event_id}/requeue``.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from patron.auth.principal import Role
from patron.events.schemas import DeadLetterPage, EventPage, RequeueResult
from patron.events.service import EventService
from patron.http.scope import RequestContext, Scope

router = APIRouter(prefix="/events", tags=["events"])

READERS = Scope(Role.ADMIN, Role.SERVICE)
ADMIN = Scope(Role.ADMIN)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@router.get(
    "",
    response_model=EventPage,
    summary="The tenant's events in order",
    description=(
        "CloudEvents in feed order (the order of the transactions that wrote them; a "
        "customer's events in the order they happened). Pass the last id seen as `after` "
        "to continue; `next_cursor` is null when there is nothing more yet. An `after` that "
        "is not an event of this tenant is 422."
    ),
)
async def list_events(
    ctx: Annotated[RequestContext, Depends(READERS, scope="function")],
    after: Annotated[uuid.UUID | None, Query(description="id of the last event seen")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> EventPage:
    return await EventService(ctx).feed(after, limit)


@router.get(
    "/dead-letters",
    response_model=DeadLetterPage,
    summary="Events the relay gave up on",
    description="Events a broker rejected RELAY_MAX_ATTEMPTS times, oldest first.",
)
async def list_dead_letters(
    ctx: Annotated[RequestContext, Depends(READERS, scope="function")],
    after: Annotated[uuid.UUID | None, Query(description="id of the last one seen")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> DeadLetterPage:
    return await EventService(ctx).dead_letters(after, limit)


@router.post(
    "/{event_id}/requeue",
    response_model=RequeueResult,
    summary="Publish a dead-lettered event again",
    description="404 for an unknown event, 409 for one that is not dead-lettered.",
    responses={409: {"description": "The event is not dead-lettered"}},
)
async def requeue_event(
    event_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(ADMIN, scope="function")],
) -> RequeueResult:
    return await EventService(ctx).requeue(event_id)

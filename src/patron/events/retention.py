"""Retention: deleting what has done its work (``patron events prune``).

The outbox, the webhook deliveries and the consumer's inbox only grow; nothing in the
write path deletes from them. Pruning removes, older than a cut-off:

- **outbox events** published to every transport (``published_at``) *and* already read
  by the webhook fan-out (feed position at or before its cursor). Pending and
  dead-lettered events are kept, whatever their age (a dead letter waits for
  ``patron events resend``). The events feed (``GET /api/v1/events``) then starts at
  the cut-off: a consumer of the feed must not lag further behind than that.
- **webhook deliveries** in a final state (``succeeded``, ``failed``) last changed before
  the cut-off; pending ones are kept.
- **inbox message ids** received before the cut-off. A broker redelivery older than the
  cut-off would then be processed again, so keep it far beyond any redelivery window.

Runs as ``patron_system`` (migration 0009), in batches of ``batch_size`` rows, each batch
its own transaction, so a large backlog never holds long locks or one huge transaction.

:class:`OutboxMaintenance` holds the two cross-tenant operations the CLI calls (``patron
events prune``, ``patron events resend``): each opens, uses and disposes its own
``patron_system`` engine, so a command only parses, calls one and renders.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, String, bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import DateTime

from patron.config import Settings
from patron.db.engine import create_sessionmaker, create_system_engine
from patron.db.fastpath import CompiledStatement
from patron.models.webhook_cursor import FANOUT_CURSOR
from patron.models.webhook_delivery import DELIVERY_FAILED, DELIVERY_SUCCEEDED
from patron.relay import store as relay_store

_BEFORE = bindparam("before", type_=DateTime(timezone=True))
_LIMIT = bindparam("batch", type_=Integer)

# Oldest first through the seq index; the row comparison with the cursor is NULL (keeps
# everything) while the fan-out has no position yet.
_EVENTS = CompiledStatement(
    text(
        "DELETE FROM outbox_events WHERE id IN ("
        " SELECT id FROM outbox_events"
        " WHERE published_at < :before AND dead_at IS NULL"
        " AND (xid, seq) <= (SELECT xid, seq FROM webhook_cursors WHERE name = :cursor)"
        " ORDER BY seq LIMIT :batch)"
    ).bindparams(_BEFORE, _LIMIT, bindparam("cursor", type_=String))
)
_DELIVERIES = CompiledStatement(
    text(
        "DELETE FROM webhook_deliveries WHERE id IN ("
        " SELECT id FROM webhook_deliveries"
        " WHERE status IN (:succeeded, :failed) AND updated_at < :before LIMIT :batch)"
    ).bindparams(
        _BEFORE,
        _LIMIT,
        bindparam("succeeded", type_=String),
        bindparam("failed", type_=String),
    )
)
_INBOX = CompiledStatement(
    text(
        "DELETE FROM inbox_messages WHERE id IN ("
        " SELECT id FROM inbox_messages WHERE received_at < :before LIMIT :batch)"
    ).bindparams(_BEFORE, _LIMIT)
)


@dataclass(frozen=True, slots=True)
class Pruned:
    """Rows deleted by :func:`prune`, per table."""

    events: int
    deliveries: int
    inbox_messages: int


async def prune(engine: AsyncEngine, before: datetime, *, batch_size: int = 5_000) -> Pruned:
    """Delete outbox events, webhook deliveries and inbox ids that have done their work
    before ``before`` (timezone-aware), as the module docstring says. ``engine`` is a
    ``patron_system`` engine (``create_system_engine``). Returns the counts."""
    if before.tzinfo is None:
        raise ValueError("before must be timezone-aware")
    params = {
        "before": before,
        "cursor": FANOUT_CURSOR,
        "succeeded": DELIVERY_SUCCEEDED,
        "failed": DELIVERY_FAILED,
    }
    sessions = create_sessionmaker(engine)
    counts = []
    for statement in (_EVENTS, _DELIVERIES, _INBOX):
        total = 0
        while True:
            async with sessions() as session, session.begin():
                deleted = await statement.execute_count(session, {**params, "batch": batch_size})
            total += deleted
            if deleted < batch_size:
                break
        counts.append(total)
    return Pruned(*counts)


@dataclass(frozen=True, slots=True)
class OutboxMaintenance:
    """Cross-tenant outbox operations of the CLI, as ``patron_system`` on the database at
    ``url``. Not tenant use cases (they span every tenant, so no tenant unit of work): each
    call opens a one-connection system engine, runs in its own transactions and disposes
    the engine before it returns."""

    settings: Settings
    url: str

    async def prune(self, before: datetime) -> Pruned:
        """:func:`prune` everything done before ``before`` (timezone-aware)."""
        engine = create_system_engine(self.settings, self.url, pool_size=1)
        try:
            return await prune(engine, before)
        finally:
            await engine.dispose()

    async def resend(
        self, *, since: datetime | None = None, event_id: uuid.UUID | None = None
    ) -> int:
        """Mark for republishing every event from ``since`` on, or the one ``event_id``, in
        one transaction; returns how many (``relay.store.resend``; ``ValueError`` without
        either)."""
        engine = create_system_engine(self.settings, self.url, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await relay_store.resend(session, since=since, event_id=event_id)
        finally:
            await engine.dispose()

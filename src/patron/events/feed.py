"""Reading the outbox in a stable order: the event feed.

Outbox rows get their ``seq`` when inserted, not when committed, so "every event after
seq N" can miss an event that a slow transaction inserted earlier and commits later. The
feed orders by ``(xid, seq)`` instead — the writing transaction's id, then insertion
order within it — and reads only events of transactions older than the oldest one still
running (``pg_snapshot_xmin(pg_current_snapshot())``). Every transaction that can still
commit has an xid at or above that horizon, so nothing can later appear before a position
a reader has passed: the feed only ever grows at its end
(docs/decisions/0007-outbox-order.md).

Events of one customer keep their order: a write locks the customer's row first, so a
later transaction on the same customer gets its xid (at its first write) only after the
earlier one committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Select, Text, cast, literal, literal_column, select, tuple_
from sqlalchemy.sql.elements import ColumnClause

from patron.models import OutboxEvent

# the oldest transaction still running: events of older transactions are final
HORIZON: ColumnClause[Any] = literal_column("pg_snapshot_xmin(pg_current_snapshot())")


@dataclass(frozen=True, slots=True)
class FeedPosition:
    """A place in the feed: just after the event with this ``(xid, seq)``."""

    xid: int
    seq: int

    @classmethod
    def of(cls, event: OutboxEvent) -> FeedPosition:
        return cls(xid=int(event.xid), seq=event.seq)


def feed_query(*, after: FeedPosition | None, limit: int) -> Select[OutboxEvent]:
    """The statement for the next ``limit`` final events after ``after``, every tenant's.

    Tenant code narrows it with a ``TenantScopedRepository`` (``repo.scoped(stmt)``); only
    the ``patron_system`` role (background services) reads across tenants.
    """
    stmt: Select[OutboxEvent] = select(OutboxEvent).where(OutboxEvent.xid < HORIZON)
    if after is not None:
        stmt = stmt.where(
            tuple_(OutboxEvent.xid, OutboxEvent.seq)
            > tuple_(
                cast(cast(literal(after.xid, BigInteger), Text), OutboxEvent.xid.type), after.seq
            )
        )
    return stmt.order_by(OutboxEvent.xid, OutboxEvent.seq).limit(limit)

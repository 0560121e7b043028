"""The relay's statements on ``outbox_events``, run as ``patron_system`` (every tenant).

Claiming (docs/decisions/0007-outbox-order.md): events are split into ``RELAY_PARTITIONS``
partitions by a hash of their ``subject`` (the customer id; the event id when there is
none). A relay's transaction first takes transaction-scoped advisory locks
(``pg_try_advisory_xact_lock(<transport key>, <partition>)``) on every partition no other
relay holds, then reads those partitions' pending events in ``seq`` order, publishes them
and marks them in the same transaction. The locks end with the transaction, after the
marks are committed, so the next relay to lock a partition sees them: no two relays publish
one customer's events at the same time, and never out of order.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Integer,
    Uuid,
    all_,
    and_,
    any_,
    bindparam,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import (
    cast as sa_cast,
)
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Text

from patron.db.fastpath import CompiledStatement
from patron.models import OutboxEvent

E = OutboxEvent


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An outbox row as the relay reads it. ``data`` is the stored JSON document, not
    parsed: an ``orjson.Fragment`` that serialises as itself (the relay only forwards it)."""

    id: uuid.UUID
    tenant_id: str
    type: str
    source: str
    subject: str | None
    time: datetime
    data: orjson.Fragment
    trace_id: str | None
    attempts: int
    next_attempt_at: datetime | None

    @classmethod
    def from_record(cls, row: Any) -> PendingEvent:
        """From a claim row (an ``asyncpg.Record`` with ``data`` as text)."""
        return cls(
            id=row["id"],
            tenant_id=row["tenant_id"],
            type=row["type"],
            source=row["source"],
            subject=row["subject"],
            time=row["time"],
            data=orjson.Fragment(row["data"]),
            trace_id=row["trace_id"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
        )


# Every round runs these; compiled once (patron.db.fastpath).
_LOCK_PARTITIONS = CompiledStatement(
    text(
        "SELECT coalesce(array_agg(p ORDER BY p), '{}') AS locked "
        "FROM generate_series(0, :partitions - 1) AS p "
        "WHERE pg_try_advisory_xact_lock(:key, p)"
    ).bindparams(bindparam("partitions", type_=Integer), bindparam("key", type_=Integer))
)


def lock_key(transport: str) -> int:
    """The advisory-lock class id of a transport's partitions (a signed 32-bit int)."""
    return zlib.crc32(f"patron.relay.{transport}".encode()) & 0x7FFFFFFF


def partition_of(partitions: Any) -> ColumnElement[Any]:
    """SQL: the partition (0..partitions-1) of an event, by its subject (customer id)."""
    key = func.coalesce(E.subject, func.cast(E.id, Text))
    shifted = func.cast(func.hashtext(key), BigInteger) + literal_column("2147483648", BigInteger)
    return func.mod(shifted, partitions)


async def lock_partitions(session: AsyncSession, transport: str, partitions: int) -> list[int]:
    """Take every partition of ``transport`` no other relay holds, until the transaction
    ends; returns their numbers."""
    row = await _LOCK_PARTITIONS.fetchrow(
        session, {"partitions": partitions, "key": lock_key(transport)}
    )
    return list(row["locked"])


def pending(transport: Any) -> ColumnElement[bool]:
    """SQL: events not dead, not published everywhere, not yet confirmed by ``transport``
    (a transport name, or a bind parameter of one)."""
    return and_(
        E.published_at.is_(None),
        E.dead_at.is_(None),
        not_(E.published_to.contains(sa_cast(array([transport]), ARRAY(Text)))),
    )


_CLAIM_COLUMNS = (
    E.id,
    E.tenant_id,
    E.type,
    E.source,
    E.subject,
    E.time,
    func.cast(E.data, Text).label("data"),
    E.trace_id,
    E.attempts,
    E.next_attempt_at,
)
_TRANSPORT = bindparam("transport", type_=Text)
# events of a batch still waiting for its confirms: pending, but not to be claimed again
_NOT_IN_FLIGHT = E.id != all_(bindparam("in_flight", type_=ARRAY(Uuid)))
_CLAIM_ALL = CompiledStatement(
    select(*_CLAIM_COLUMNS)
    .where(pending(_TRANSPORT), _NOT_IN_FLIGHT)
    .order_by(E.seq)
    .limit(bindparam("limit", type_=Integer))
)
_CLAIM_SOME = CompiledStatement(
    select(*_CLAIM_COLUMNS)
    .where(
        pending(_TRANSPORT),
        _NOT_IN_FLIGHT,
        partition_of(bindparam("partitions", type_=Integer))
        == any_(bindparam("locked", type_=ARRAY(Integer))),
    )
    .order_by(E.seq)
    .limit(bindparam("limit", type_=Integer))
)
_MARK_PUBLISHED = CompiledStatement(
    update(E)
    .where(E.id == any_(bindparam("ids", type_=ARRAY(Uuid))))
    .values(
        published_to=func.array_append(E.published_to, _TRANSPORT),
        published_at=text(
            "CASE WHEN array_append(published_to, :transport) @> :required THEN now() END"
        ).bindparams(_TRANSPORT, bindparam("required", type_=ARRAY(Text))),
        next_attempt_at=null(),
        last_error=null(),
    )
)


async def claim(
    session: AsyncSession,
    transport: str,
    *,
    partitions: int,
    locked: Sequence[int],
    limit: int,
    in_flight: Sequence[uuid.UUID] = (),
) -> list[PendingEvent]:
    """Up to ``limit`` pending events of the ``locked`` partitions, in ``seq`` order,
    leaving out ``in_flight`` (sent, their confirms pending, not marked yet)."""
    params: dict[str, Any] = {"transport": transport, "limit": limit, "in_flight": list(in_flight)}
    statement = _CLAIM_ALL
    if len(locked) < partitions:
        statement = _CLAIM_SOME
        params.update(partitions=partitions, locked=list(locked))
    return [PendingEvent.from_record(row) for row in await statement.fetch(session, params)]


async def mark_published(
    session: AsyncSession, transport: str, ids: Sequence[uuid.UUID], required: Sequence[str]
) -> None:
    """Record ``transport``'s confirms of ``ids`` in one statement; ``published_at`` is set
    once every transport in ``required`` has confirmed."""
    if ids:
        await _MARK_PUBLISHED.execute(
            session, {"ids": list(ids), "transport": transport, "required": list(required)}
        )


async def mark_rejected(
    session: AsyncSession,
    event_id: uuid.UUID,
    error: str,
    *,
    max_attempts: int,
    backoff_initial: float,
    backoff_max: float,
) -> bool:
    """Count a rejection: back the event off (``initial * 2^attempts`` s, capped) or, at
    ``max_attempts``, dead-letter it. Returns True when it was dead-lettered."""
    attempts = E.attempts + 1
    delay = func.least(literal(backoff_initial) * func.power(2, E.attempts), literal(backoff_max))
    dead: datetime | None = (
        await session.execute(
            update(E)
            .where(E.id == event_id)
            .values(
                attempts=attempts,
                last_error=error[:2000],
                next_attempt_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, delay),
                dead_at=text("CASE WHEN attempts + 1 >= :max_attempts THEN now() END").bindparams(
                    bindparam("max_attempts", max_attempts, type_=Integer)
                ),
            )
            .returning(E.dead_at)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    return dead is not None


def resend_values() -> dict[str, object]:
    """The column values that make an event pending again on every transport."""
    return {
        "published_at": None,
        "published_to": text("'{}'::text[]"),
        "attempts": 0,
        "next_attempt_at": None,
        "last_error": None,
        "dead_at": None,
    }


async def resend(
    session: AsyncSession, *, since: datetime | None = None, event_id: uuid.UUID | None = None
) -> int:
    """Make events pending again (``patron events resend``): those with ``time >= since``
    or the one with ``event_id``. Returns how many. Raises ``ValueError`` without either."""
    if since is None and event_id is None:
        raise ValueError("give since or event_id")
    conditions = []
    if since is not None:
        conditions.append(E.time >= since)
    if event_id is not None:
        conditions.append(E.id == event_id)
    result = await session.execute(
        update(E)
        .where(or_(*conditions))
        .values(**resend_values())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]

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
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Integer,
    Uuid,
    and_,
    any_,
    bindparam,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Text

from patron.models import OutboxEvent

E = OutboxEvent

_LOCK_PARTITIONS = text(
    "SELECT coalesce(array_agg(p ORDER BY p), '{}') "
    "FROM generate_series(0, :partitions - 1) AS p "
    "WHERE pg_try_advisory_xact_lock(:key, p)"
).columns()


def lock_key(transport: str) -> int:
    """The advisory-lock class id of a transport's partitions (a signed 32-bit int)."""
    return zlib.crc32(f"patron.relay.{transport}".encode()) & 0x7FFFFFFF


def partition_of(partitions: int) -> ColumnElement[Any]:
    """SQL: the partition (0..partitions-1) of an event, by its subject (customer id)."""
    key = func.coalesce(E.subject, func.cast(E.id, Text))
    return func.mod(func.cast(func.hashtext(key), BigInteger) + 2147483648, partitions)


async def lock_partitions(session: AsyncSession, transport: str, partitions: int) -> list[int]:
    """Take every partition of ``transport`` no other relay holds, until the transaction
    ends; returns their numbers."""
    result = await session.execute(
        _LOCK_PARTITIONS, {"partitions": partitions, "key": lock_key(transport)}
    )
    locked: list[int] = list(result.scalar_one())
    return locked


def pending(transport: str) -> ColumnElement[bool]:
    """SQL: events not dead, not published everywhere, not yet confirmed by ``transport``."""
    return and_(
        E.published_at.is_(None),
        E.dead_at.is_(None),
        not_(E.published_to.contains(literal([transport], ARRAY(Text)))),
    )


async def claim(
    session: AsyncSession,
    transport: str,
    *,
    partitions: int,
    locked: Sequence[int],
    limit: int,
) -> list[OutboxEvent]:
    """Up to ``limit`` pending events of the ``locked`` partitions, in ``seq`` order.

    The rows are plain result rows with the model's attribute names, not ORM instances
    (a third of the relay's time went to ORM loading); treat them as read-only.
    """
    stmt = select(E.__table__).where(pending(transport))
    if len(locked) < partitions:
        stmt = stmt.where(partition_of(partitions) == any_(literal(list(locked), ARRAY(Integer))))
    stmt = stmt.order_by(E.seq).limit(limit)
    rows = (await session.execute(stmt)).all()
    return cast(list[OutboxEvent], rows)


async def mark_published(
    session: AsyncSession, transport: str, ids: Sequence[uuid.UUID], required: Sequence[str]
) -> None:
    """Record ``transport``'s confirms of ``ids`` in one statement; ``published_at`` is set
    once every transport in ``required`` has confirmed."""
    if not ids:
        return
    after = func.array_append(E.published_to, transport)
    await session.execute(
        update(E)
        .where(E.id == any_(literal(list(ids), ARRAY(Uuid))))
        .values(
            published_to=after,
            published_at=text(
                "CASE WHEN array_append(published_to, :transport) @> :required THEN now() END"
            ).bindparams(
                bindparam("transport", transport, type_=Text),
                bindparam("required", list(required), type_=ARRAY(Text)),
            ),
            next_attempt_at=None,
            last_error=None,
        )
        .execution_options(synchronize_session=False)
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

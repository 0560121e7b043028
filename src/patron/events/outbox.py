"""The transactional outbox: events are rows written in the caller's transaction.

:func:`record` is the only way services emit events; nothing publishes inline. The row
holds a complete CloudEvents 1.0 envelope (https://github.com/cloudevents/spec, JSON
format) plus the ``tenantid`` and ``traceid`` extension attributes; a relay publishes it
after commit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from patron.events.types import EventType
from patron.kit.ids import new_id
from patron.kit.jsonutil import dumps, loads
from patron.models import OutboxEvent
from patron.ops.tracing import current_trace_id
from patron.tenancy import TenantId

SOURCE = "/patron/customers"
SPEC_VERSION = "1.0"


async def record(
    session: AsyncSession,
    tenant: TenantId,
    type_: EventType,
    subject: str | None,
    data: dict[str, Any],
) -> None:
    """Add one event to the outbox in ``session``'s transaction (not flushed separately)."""
    await session.execute(
        insert(OutboxEvent).values(
            id=new_id(),
            tenant_id=tenant,
            type=str(type_),
            source=SOURCE,
            subject=subject,
            time=datetime.now(UTC),
            data=loads(dumps(data)),  # JSON-normalise (UUID, datetime, Decimal)
            trace_id=current_trace_id(),
        )
    )


def to_cloudevent(row: OutboxEvent) -> dict[str, Any]:
    """The CloudEvents 1.0 JSON envelope of an outbox row."""
    event: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": str(row.id),
        "source": row.source,
        "type": row.type,
        "time": row.time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "tenantid": row.tenant_id,
        "data": row.data,
    }
    if row.subject is not None:
        event["subject"] = row.subject
    if row.trace_id is not None:
        event["traceid"] = row.trace_id
    return event

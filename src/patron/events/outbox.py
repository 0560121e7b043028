"""The transactional outbox: events are rows written in the caller's transaction.

:func:`record` is the only way services emit events; nothing publishes inline. The row
holds a complete CloudEvents 1.0 envelope (https://github.com/cloudevents/spec, JSON
format) plus the ``tenantid`` and ``traceid`` extension attributes; a relay publishes it
after commit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import DateTime, String, Text, Uuid, bindparam, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from patron.db.fastpath import CompiledStatement, Executor
from patron.events.types import EventType
from patron.kit.ids import new_id
from patron.kit.jsonutil import dumps
from patron.models import OutboxEvent
from patron.tenancy import TenantId
from patron.tracing import current_trace_id

SOURCE = "/patron/customers"
SPEC_VERSION = "1.0"

# Every write records events: compiled once. ``data`` arrives as serialised JSON (raw).
_INSERT = CompiledStatement(
    insert(OutboxEvent).values(
        id=bindparam("p_id", type_=Uuid),
        tenant_id=bindparam("p_tenant_id", type_=String),
        type=bindparam("p_type", type_=String),
        source=bindparam("p_source", type_=String),
        subject=bindparam("p_subject", type_=String),
        time=bindparam("p_time", type_=DateTime(timezone=True)),
        data=bindparam("p_data", type_=JSONB),
        trace_id=bindparam("p_trace_id", type_=Text),
    ),
    raw=("p_data",),
)


async def record(
    executor: Executor,
    tenant: TenantId,
    type_: EventType,
    subject: str | None,
    data: dict[str, Any],
) -> None:
    """Add one event to the outbox in the unit of work's transaction (one prepared
    ``INSERT``); ``executor`` is its session or its driver connection.

    ``data`` is serialised with :func:`patron.kit.jsonutil.dumps` (UUID, datetime and
    Decimal become strings). A session's pending ORM changes are flushed first so the
    event follows them in the same transaction.
    """
    if isinstance(executor, AsyncSession) and (executor.new or executor.dirty or executor.deleted):
        await executor.flush()
    await _INSERT.execute(
        executor,
        {
            "p_id": new_id(),
            "p_tenant_id": tenant,
            "p_type": str(type_),
            "p_source": SOURCE,
            "p_subject": subject,
            "p_time": datetime.now(UTC),
            "p_data": dumps(data).decode(),
            "p_trace_id": current_trace_id(),
        },
    )


class EventRow(Protocol):
    """What :func:`to_cloudevent` reads: an ``OutboxEvent`` or the relay's ``PendingEvent``."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def source(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def time(self) -> datetime: ...
    @property
    def tenant_id(self) -> str: ...
    @property
    def data(self) -> Any: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def trace_id(self) -> str | None: ...


def to_cloudevent(row: EventRow) -> dict[str, Any]:
    """The CloudEvents 1.0 JSON envelope of an outbox row (``data`` as stored: a dict, or
    an ``orjson.Fragment`` of the stored JSON)."""
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

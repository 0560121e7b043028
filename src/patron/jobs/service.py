"""Deferring jobs: :class:`JobService`, the use case every domain service calls to start
background work.

The job row is written with the open unit of work's connection (session or driver), so
it commits with the change that asked for it or not at all: a job exists if and only if
its write committed (the outbox principle, STYLE.md "Events").
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, String, Uuid, bindparam, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from patron.db.fastpath import CompiledStatement
from patron.jobs.kinds import JobKind
from patron.kit.ids import new_id
from patron.kit.jsonutil import dumps
from patron.models import Job
from patron.usecases import Service, writes

_INSERT = CompiledStatement(
    insert(Job).values(
        id=bindparam("p_id", type_=Uuid),
        tenant_id=bindparam("p_tenant_id", type_=String),
        kind=bindparam("p_kind", type_=String),
        payload=bindparam("p_payload", type_=JSONB),
        max_attempts=bindparam("p_max_attempts", type_=Integer),
        scheduled_at=bindparam("p_scheduled_at", type_=DateTime(timezone=True)),
    ),
    raw=("p_payload",),
)


class JobService(Service):
    """Background jobs of one tenant (:class:`patron.usecases.ServiceContext`)."""

    @writes()
    async def defer(
        self, kind: JobKind, payload: Mapping[str, Any], *, delay_seconds: float = 0.0
    ) -> uuid.UUID:
        """Queue a job of ``kind`` for this tenant in the open unit of work (joined when a
        use case calls it, as it should); returns the job id. It runs after
        ``delay_seconds`` at the earliest, once its transaction has committed.

        ``payload`` is a JSON object (:func:`patron.kit.jsonutil.dumps`: UUID, datetime and
        Decimal become strings); it is stored, so it must hold ids, never secrets.
        Raises ``TypeError`` for a value JSON cannot hold.
        """
        executor = self.executor
        if isinstance(executor, AsyncSession) and (
            executor.new or executor.dirty or executor.deleted
        ):
            await executor.flush()
        job_id = new_id()
        await _INSERT.execute(
            executor,
            {
                "p_id": job_id,
                "p_tenant_id": self.tenant,
                "p_kind": kind.name,
                "p_payload": dumps(dict(payload)).decode(),
                "p_max_attempts": kind.retry.attempts,
                "p_scheduled_at": datetime.now(UTC) + timedelta(seconds=max(delay_seconds, 0.0)),
            },
        )
        return job_id

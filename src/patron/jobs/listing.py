"""Every tenant's jobs for the operator: what ``patron jobs list`` shows.

Runs as ``patron_system`` (the ``system_access`` policy on ``jobs``): an operator tool,
never reached from the API, where row-level security keeps each tenant to its own jobs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from patron.config import Settings
from patron.db.engine import create_sessionmaker, create_system_engine
from patron.jobs.repository import JobRepository
from patron.models import Job
from patron.models.job import JOB_STATUSES
from patron.tenancy import TenantId

MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job as listed; times are UTC, None until the job gets there."""

    id: uuid.UUID
    kind: str
    tenant_id: str
    status: str
    attempts: int
    max_attempts: int
    scheduled_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    last_error: str | None


async def list_jobs(
    settings: Settings,
    database_url: str,
    *,
    tenant: TenantId | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[JobRow]:
    """The newest ``limit`` (1..1000) jobs, newest first, of ``tenant`` (all when None) in
    ``status`` (any when None; one of ``queued``, ``running``, ``completed``, ``failed``,
    ``cancelled``). Raises ``ValueError`` for another status or limit."""
    if status is not None and status not in JOB_STATUSES:
        raise ValueError(f"status must be one of {', '.join(JOB_STATUSES)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}")
    stmt = (
        select(
            Job.id,
            Job.kind,
            Job.tenant_id,
            Job.status,
            Job.attempts,
            Job.max_attempts,
            Job.scheduled_at,
            Job.started_at,
            Job.finished_at,
            Job.last_error,
        )
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(Job.status == status)
    engine = create_system_engine(settings, database_url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            if tenant is not None:
                stmt = JobRepository(session, tenant).scoped(stmt)
            rows = (await session.execute(stmt)).all()
    finally:
        await engine.dispose()
    return [JobRow(**row._mapping) for row in rows]

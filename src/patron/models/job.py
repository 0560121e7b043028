"""``jobs``: one row per background job (the job runner of :mod:`patron.jobs`).

A job is ``queued`` until its ``scheduled_at``; a worker claims it (``running``, counts the
attempt, takes a lease: ``lease_id`` and ``locked_until``), runs its handler for its tenant
and marks it ``completed``, ``queued`` again with a later ``scheduled_at`` (a retry), or
``failed`` (attempts exhausted, or an error that must not be retried). A ``running`` row
whose lease ran out belonged to a worker that died: it is claimed again.
(docs/decisions/0017-background-jobs.md)
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from patron.db.base import Base
from patron.models.mixins import IdMixin, TenantMixin, TimestampMixin

JOB_QUEUED = "queued"
JOB_RUNNING = "running"
JOB_COMPLETED = "completed"
JOB_FAILED = "failed"
# API.md's job statuses; ``cancelled`` is reserved for jobs a user may cancel (imports).
JOB_STATUSES = (JOB_QUEUED, JOB_RUNNING, JOB_COMPLETED, JOB_FAILED, "cancelled")


class Job(IdMixin, TenantMixin, TimestampMixin, Base):
    __tablename__ = "jobs"

    kind: Mapped[str] = mapped_column(String(100), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=text(f"'{JOB_QUEUED}'")
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    scheduled_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_id: Mapped[uuid.UUID | None] = mapped_column()
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_jobs_tenant_id_created_at", "tenant_id", "created_at"),
        Index("ix_jobs_due", "scheduled_at", postgresql_where=text("status = 'queued'")),
        Index("ix_jobs_leased", "locked_until", postgresql_where=text("status = 'running'")),
    )

"""The job worker: a :class:`~patron.runtime.BackgroundService` that runs due jobs.

Claiming runs as ``patron_system`` (every tenant's jobs, ``system_access`` policy): one
``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1)`` marks a due job
``running``, counts the attempt and takes a lease (``lease_id``, ``locked_until``), and
commits at once, so no two workers ever run one job and no transaction stays open while a
handler runs. The handler then runs with a :class:`~patron.usecases.ServiceContext` of the
job's tenant (the application engine, row-level security), and its outcome is recorded
only while this worker still holds the lease. The lease is renewed every third of
``JOBS_LEASE_SECONDS`` while the handler runs; a worker that dies leaves a lease that runs
out, and the job is claimed again (the lost run counts as an attempt).

On stop (SIGTERM) the current job may finish for ``JOBS_STOP_GRACE_SECONDS``; after that
its handler is cancelled and the job released: queued again at once, the interrupted
attempt not counted. (docs/decisions/0017-background-jobs.md)
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import and_, any_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.types import Text

from patron.auth.principal import Principal, Role
from patron.context import AppContext
from patron.db.engine import create_sessionmaker, create_system_engine
from patron.errors import PatronError
from patron.jobs.kinds import KINDS, DoNotRetry, JobKind, JobRegistry
from patron.models import Job
from patron.models.job import JOB_COMPLETED, JOB_FAILED, JOB_QUEUED, JOB_RUNNING
from patron.runtime.supervisor import BackgroundService, wait_or_stop
from patron.tenancy import trusted_tenant
from patron.tracing import new_trace_id, set_trace_id
from patron.usecases import ServiceContext

log = structlog.get_logger("patron.jobs")

J = Job
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True, slots=True)
class Claim:
    """A job this worker holds the lease of. ``attempts`` counts this run (1-based)."""

    id: uuid.UUID
    tenant_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    lease_id: uuid.UUID


def job_principal(claim: Claim) -> Principal:
    """The system principal a job acts as: role ``service`` of the job's tenant, its id
    naming the kind (``job:<kind>``) and its subject the job id (audit, logs)."""
    return Principal(
        id=f"job:{claim.kind}",
        subject=str(claim.id),
        roles=frozenset({Role.SERVICE}),
        tenant_id=claim.tenant_id,
    )


def error_line(exc: BaseException) -> str:
    """What ``last_error`` keeps of a failure: one line, at most 500 characters.

    :class:`DoNotRetry` and :class:`~patron.errors.PatronError` messages are written for
    people (a problem's ``detail``) and are kept; any other exception keeps its class name
    only, since its message may carry a secret (a URL with credentials, a token in a
    driver error), as the supervisor does for crashed services.
    """
    if isinstance(exc, PatronError):
        text = f"{type(exc).__name__}: {exc.detail}"
    elif isinstance(exc, DoNotRetry):
        text = f"{type(exc).__name__}: {exc}"
    else:
        text = type(exc).__name__
    line = " ".join(text.split())
    return line[:MAX_ERROR_LENGTH]


class JobWorker:
    """Runs due jobs of the kinds in ``registry``, one at a time per worker (replicas and
    ``patron serve`` add workers). ``engine`` is a ``patron_system`` engine for claims and
    outcomes (closed by :meth:`aclose`); handlers use ``app``'s own database."""

    name = "jobs"

    def __init__(
        self, app: AppContext, registry: JobRegistry, engine: AsyncEngine | None = None
    ) -> None:
        self.app = app
        self.registry = registry
        self.settings = app.settings
        self.engine = engine or create_system_engine(app.settings, app.database_url)
        self.sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(self.engine)

    async def aclose(self) -> None:
        """Close the claim engine's connections (they reopen on next use)."""
        await self.engine.dispose()

    async def run(self, stop: asyncio.Event) -> None:
        """Run jobs until ``stop`` is set, sleeping ``JOBS_POLL_INTERVAL_SECONDS`` when none
        is due. A job started before ``stop`` finishes or is released (module docstring)."""
        try:
            while not stop.is_set():
                if not await self.run_once(stop):
                    await wait_or_stop(stop, self.settings.jobs_poll_interval_seconds)
        finally:
            await self.aclose()

    async def run_once(self, stop: asyncio.Event | None = None) -> bool:
        """Claim one due job and run it; False when none was due."""
        claim = await self.claim()
        if claim is None:
            return False
        await self.execute(claim, stop or asyncio.Event())
        return True

    async def claim(self) -> Claim | None:
        """Lease the next due job of a known kind (``FOR UPDATE SKIP LOCKED``): a queued job
        whose ``scheduled_at`` has come, or a running one whose lease ran out."""
        kinds = self.registry.names()
        if not kinds:
            return None
        lease = uuid.uuid4()
        due = (
            select(J.id)
            .where(
                J.kind == any_(bindparam("kinds", kinds, type_=ARRAY(Text))),
                or_(
                    and_(J.status == JOB_QUEUED, J.scheduled_at <= func.now()),
                    and_(J.status == JOB_RUNNING, J.locked_until < func.now()),
                ),
            )
            .order_by(J.scheduled_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(J)
            .where(J.id.in_(due))
            .values(
                status=JOB_RUNNING,
                attempts=J.attempts + 1,
                started_at=func.now(),
                lease_id=lease,
                locked_until=func.now() + self._lease,
                updated_at=func.now(),
            )
            .returning(J.id, J.tenant_id, J.kind, J.payload, J.attempts, J.max_attempts)
        )
        async with self.sessions() as session, session.begin():
            row = (await session.execute(stmt)).one_or_none()
        return None if row is None else Claim(**row._mapping, lease_id=lease)

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.settings.jobs_lease_seconds)

    async def execute(self, claim: Claim, stop: asyncio.Event) -> None:
        """Run ``claim``'s handler for its tenant and record the outcome (module
        docstring). Never raises for a handler's failure; a cancelled worker releases
        the job and re-raises."""
        kind = self.registry.get(claim.kind)
        if kind is None:  # pragma: no cover - claim() selects known kinds only
            return
        set_trace_id(new_trace_id())
        bound = log.bind(job_id=str(claim.id), kind=claim.kind, tenant_id=claim.tenant_id)
        if claim.attempts > claim.max_attempts:
            # claimed again after its lease ran out on its last attempt: the run was lost
            await self._finish(claim, JOB_FAILED, "lease expired: the worker stopped or died")
            bound.warning("job failed: its last attempt was lost")
            return
        task = asyncio.create_task(self._handle(kind, claim), name=f"patron-job-{claim.id}")
        heartbeat = asyncio.create_task(self._heartbeat(claim, task))
        try:
            finished = await self._wait(task, stop)
        except asyncio.CancelledError:
            await self._interrupt(task)
            await asyncio.shield(self._release(claim))
            raise
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        if not finished:
            await self._interrupt(task)
            await self._release(claim)
            bound.info("job released at stop", attempt=claim.attempts)
            return
        exc = task.exception()
        if exc is None:
            await self._finish(claim, JOB_COMPLETED, None)
            bound.info("job completed", attempt=claim.attempts)
            return
        error = error_line(exc)
        if isinstance(exc, DoNotRetry) or claim.attempts >= claim.max_attempts:
            await self._finish(claim, JOB_FAILED, error)
            bound.warning("job failed", attempt=claim.attempts, error=error)
            return
        delay = kind.retry.delay(claim.attempts)
        await self._retry(claim, delay, error)
        bound.info("job will be retried", attempt=claim.attempts, error=error, in_seconds=delay)

    async def _handle(self, kind: JobKind, claim: Claim) -> None:
        tenant = trusted_tenant(claim.tenant_id)
        await kind.handler(ServiceContext(self.app, job_principal(claim), tenant), claim.payload)

    async def _wait(self, task: asyncio.Task[None], stop: asyncio.Event) -> bool:
        """Wait for ``task``; once ``stop`` is set, for the grace period at most. True when
        it finished."""
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if task.done():
            return True
        await asyncio.wait({task}, timeout=self.settings.jobs_stop_grace_seconds)
        return task.done()

    @staticmethod
    async def _interrupt(task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task

    async def _heartbeat(self, claim: Claim, task: asyncio.Task[None]) -> None:
        """Renew the lease every third of its length while ``task`` runs."""
        period = self.settings.jobs_lease_seconds / 3
        while not task.done():
            await asyncio.sleep(period)
            try:
                await self._update(claim, locked_until=func.now() + self._lease)
            except Exception:  # the next beat tries again; the lease is 3 periods long
                log.exception("renewing a job lease failed", job_id=str(claim.id))

    async def _update(self, claim: Claim, **values: Any) -> None:
        """Set ``values`` on the job if this worker still holds its lease."""
        stmt = (
            update(J)
            .where(J.id == claim.id, J.lease_id == claim.lease_id)
            .values(**values, updated_at=func.now())
        )
        async with self.sessions() as session, session.begin():
            await session.execute(stmt)

    async def _finish(self, claim: Claim, status: str, error: str | None) -> None:
        await self._update(
            claim,
            status=status,
            finished_at=func.now(),
            last_error=error,
            lease_id=None,
            locked_until=None,
        )

    async def _retry(self, claim: Claim, delay: float, error: str) -> None:
        await self._update(
            claim,
            status=JOB_QUEUED,
            scheduled_at=func.now() + timedelta(seconds=delay),
            last_error=error,
            lease_id=None,
            locked_until=None,
        )

    async def _release(self, claim: Claim) -> None:
        """Queue the job again at once, its interrupted attempt not counted."""
        await self._update(
            claim,
            status=JOB_QUEUED,
            attempts=J.attempts - 1,
            scheduled_at=func.now(),
            lease_id=None,
            locked_until=None,
        )


def build_job_services(ctx: AppContext, registry: JobRegistry = KINDS) -> list[BackgroundService]:
    """The job worker of a process (needs only PostgreSQL). Kinds register themselves in
    :data:`~patron.jobs.kinds.KINDS` when their domain module is imported."""
    return [JobWorker(ctx, registry)]

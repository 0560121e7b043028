"""The job runner against the real PostgreSQL: defer in a unit of work, run for the job's
tenant, retries with backoff, failures, two workers, stop, and ``patron jobs list``."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from patron.auth.principal import Role
from patron.cli import app as cli
from patron.context import AppContext
from patron.jobs.kinds import DoNotRetry, JobKind, JobRegistry, RetryPolicy
from patron.jobs.service import JobService
from patron.jobs.worker import JobWorker
from patron.processes import worker_services
from patron.usecases import ServiceContext, unit_of_work
from tests.conftest import make_settings
from tests.contexts import staff_context

FAST = {
    "jobs_poll_interval_seconds": 0.02,
    "jobs_lease_seconds": 30.0,
    "jobs_stop_grace_seconds": 0.2,
}


@pytest.fixture
def job_ctx(app_ctx: AppContext) -> AppContext:
    """The test process's context with short job settings (same database, same pools)."""
    return dataclasses.replace(app_ctx, settings=make_settings(**FAST))


@pytest.fixture
async def workers(job_ctx: AppContext) -> AsyncIterator[list[JobWorker]]:
    made: list[JobWorker] = []
    yield made
    for worker in made:
        await worker.aclose()


def new_worker(ctx: AppContext, registry: JobRegistry, made: list[JobWorker]) -> JobWorker:
    worker = JobWorker(ctx, registry)
    made.append(worker)
    return worker


def unique(name: str) -> str:
    """A kind name no other test claims (tests share the database)."""
    return f"test.{name}.{uuid.uuid4().hex[:8]}"


async def job_row(db: asyncpg.Pool, job_id: uuid.UUID) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
    assert row is not None
    return row


async def defer(ctx: ServiceContext, kind: JobKind, payload: dict[str, Any]) -> uuid.UUID:
    async with unit_of_work(ctx):
        return await JobService(ctx).defer(kind, payload)


async def test_job_deferred_in_a_committed_unit_runs_for_its_tenant(
    job_ctx: AppContext, workers: list[JobWorker], db: asyncpg.Pool, tenant: str
) -> None:
    seen: list[tuple[str, str | None, dict[str, Any], int]] = []

    async def handler(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        # row-level security applies: the handler's unit sees its tenant's job row only
        async with unit_of_work(ctx) as unit:
            visible = await unit.session.connection()
            count = (await visible.exec_driver_sql("SELECT count(*) FROM jobs")).scalar_one()
        seen.append((ctx.tenant, ctx.principal.tenant_id, payload, count))

    registry = JobRegistry()
    ping = registry.register(JobKind(unique("ping"), handler))
    ctx = staff_context(job_ctx, tenant)
    async with unit_of_work(ctx) as unit:
        # a write of the same unit, then the job: both commit together
        await unit.session.connection()
        job_id = await JobService(ctx).defer(ping, {"customer_id": "c-1", "n": 2})
        assert await db.fetchval("SELECT count(*) FROM jobs WHERE id = $1", job_id) == 0

    queued = await job_row(db, job_id)
    assert (queued["status"], queued["tenant_id"], queued["attempts"]) == ("queued", tenant, 0)
    assert queued["max_attempts"] == 5

    worker = new_worker(job_ctx, registry, workers)
    assert await worker.run_once() is True
    assert seen == [(tenant, tenant, {"customer_id": "c-1", "n": 2}, 1)]
    done = await job_row(db, job_id)
    assert (done["status"], done["attempts"], done["last_error"]) == ("completed", 1, None)
    assert done["started_at"] is not None
    assert done["finished_at"] >= done["started_at"]
    assert done["lease_id"] is None
    assert await worker.run_once() is False


async def test_job_deferred_in_a_unit_that_rolls_back_does_not_exist(
    job_ctx: AppContext, workers: list[JobWorker], db: asyncpg.Pool, tenant: str
) -> None:
    ran: list[dict[str, Any]] = []

    async def handler(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        ran.append(payload)

    registry = JobRegistry()
    ping = registry.register(JobKind(unique("ping"), handler))
    ctx = staff_context(job_ctx, tenant)

    async def failing_write() -> None:
        async with unit_of_work(ctx):
            await JobService(ctx).defer(ping, {})
            raise RuntimeError("write failed")

    with pytest.raises(RuntimeError, match="write failed"):
        await failing_write()
    assert await db.fetchval("SELECT count(*) FROM jobs WHERE tenant_id = $1", tenant) == 0
    assert await new_worker(job_ctx, registry, workers).run_once() is False
    assert ran == []


async def test_failure_then_success_waits_out_the_backoff(
    job_ctx: AppContext, workers: list[JobWorker], db: asyncpg.Pool, tenant: str
) -> None:
    calls: list[int] = []

    async def flaky(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        calls.append(len(calls) + 1)
        if len(calls) == 1:
            raise ConnectionError("upstream down, token=secret-123")

    registry = JobRegistry()
    kind = registry.register(
        JobKind(unique("flaky"), flaky, RetryPolicy(attempts=3, backoff_initial=0.4))
    )
    job_id = await defer(staff_context(job_ctx, tenant), kind, {})
    worker = new_worker(job_ctx, registry, workers)

    assert await worker.run_once() is True
    retried = await job_row(db, job_id)
    assert (retried["status"], retried["attempts"]) == ("queued", 1)
    # the message may hold a secret: only the class name is kept
    assert retried["last_error"] == "ConnectionError"
    wait = (retried["scheduled_at"] - retried["updated_at"]).total_seconds()
    assert 0.19 <= wait <= 0.41  # 0.4 s times a jitter factor in [0.5, 1]
    assert await worker.run_once() is False  # not due yet

    await asyncio.sleep(0.45)
    assert await worker.run_once() is True
    done = await job_row(db, job_id)
    assert (done["status"], done["attempts"]) == ("completed", 2)
    assert calls == [1, 2]


async def test_exhausted_retries_fail_the_job(
    job_ctx: AppContext, workers: list[JobWorker], db: asyncpg.Pool, tenant: str
) -> None:
    async def broken(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        raise ValueError("nope")

    registry = JobRegistry()
    kind = registry.register(
        JobKind(unique("broken"), broken, RetryPolicy(attempts=2, backoff_initial=0.0))
    )
    job_id = await defer(staff_context(job_ctx, tenant), kind, {})
    worker = new_worker(job_ctx, registry, workers)
    assert await worker.run_once() is True
    assert (await job_row(db, job_id))["status"] == "queued"
    assert await worker.run_once() is True
    failed = await job_row(db, job_id)
    assert (failed["status"], failed["attempts"], failed["last_error"]) == (
        "failed",
        2,
        "ValueError",
    )
    assert failed["finished_at"] is not None
    assert await worker.run_once() is False


async def test_do_not_retry_fails_at_once(
    job_ctx: AppContext, workers: list[JobWorker], db: asyncpg.Pool, tenant: str
) -> None:
    async def dead_token(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        raise DoNotRetry("page token revoked (Meta code 190)\nsecond line")

    registry = JobRegistry()
    kind = registry.register(JobKind(unique("dead"), dead_token, RetryPolicy(attempts=5)))
    job_id = await defer(staff_context(job_ctx, tenant), kind, {})
    assert await new_worker(job_ctx, registry, workers).run_once() is True
    failed = await job_row(db, job_id)
    assert failed["status"] == "failed"
    assert failed["attempts"] == 1
    assert failed["last_error"] == "DoNotRetry: page token revoked (Meta code 190) second line"


async def test_two_workers_never_run_one_job_twice(
    job_ctx: AppContext, workers: list[JobWorker], db: asyncpg.Pool, tenant: str
) -> None:
    runs: list[str] = []

    async def slow(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        runs.append(payload["n"])
        await asyncio.sleep(0.01)

    registry = JobRegistry()
    kind = registry.register(JobKind(unique("slow"), slow))
    ctx = staff_context(job_ctx, tenant)
    async with unit_of_work(ctx):
        for n in range(30):
            await JobService(ctx).defer(kind, {"n": n})
    pair = [new_worker(job_ctx, registry, workers) for _ in range(2)]

    async def drain(worker: JobWorker) -> int:
        count = 0
        while await worker.run_once():
            count += 1
        return count

    counts = await asyncio.gather(*(drain(w) for w in pair))
    assert sorted(runs) == list(range(30))
    assert sum(counts) == 30
    assert all(c > 0 for c in counts), counts  # both took part
    statuses = await db.fetch(
        "SELECT status, attempts, count(*) AS n FROM jobs WHERE tenant_id = $1 "
        "GROUP BY status, attempts",
        tenant,
    )
    assert [tuple(r) for r in statuses] == [("completed", 1, 30)]


async def test_stop_releases_a_job_that_outlives_the_grace(
    job_ctx: AppContext, workers: list[JobWorker], db: asyncpg.Pool, tenant: str
) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def endless(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    registry = JobRegistry()
    kind = registry.register(JobKind(unique("endless"), endless))
    job_id = await defer(staff_context(job_ctx, tenant), kind, {})
    stop = asyncio.Event()
    run = asyncio.create_task(new_worker(job_ctx, registry, workers).run(stop))
    await asyncio.wait_for(started.wait(), 5)
    assert (await job_row(db, job_id))["status"] == "running"
    stop.set()
    await asyncio.wait_for(run, 5)  # returns after the 0.2 s grace
    assert cancelled == [True]
    released = await job_row(db, job_id)
    assert (released["status"], released["attempts"], released["lease_id"]) == ("queued", 0, None)


async def test_stop_lets_the_current_job_finish_within_the_grace(
    job_ctx: AppContext, workers: list[JobWorker], db: asyncpg.Pool, tenant: str
) -> None:
    started = asyncio.Event()

    async def short(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(0.05)

    registry = JobRegistry()
    kind = registry.register(JobKind(unique("short"), short))
    job_id = await defer(staff_context(job_ctx, tenant), kind, {})
    stop = asyncio.Event()
    run = asyncio.create_task(new_worker(job_ctx, registry, workers).run(stop))
    await asyncio.wait_for(started.wait(), 5)
    stop.set()
    await asyncio.wait_for(run, 5)
    assert (await job_row(db, job_id))["status"] == "completed"


async def test_a_job_whose_worker_died_runs_again_after_its_lease(
    job_ctx: AppContext, workers: list[JobWorker], db: asyncpg.Pool, tenant: str
) -> None:
    ran: list[int] = []

    async def handler(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        ran.append(1)

    registry = JobRegistry()
    kind = registry.register(JobKind(unique("orphan"), handler))
    job_id = await defer(staff_context(job_ctx, tenant), kind, {})
    dead = new_worker(job_ctx, registry, workers)
    assert await dead.claim() is not None  # claimed, then the worker "dies"
    alive = new_worker(job_ctx, registry, workers)
    assert await alive.run_once() is False  # the lease still holds
    await db.execute(
        "UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1", job_id
    )
    assert await alive.run_once() is True
    done = await job_row(db, job_id)
    assert (done["status"], done["attempts"], ran) == ("completed", 2, [1])


async def test_other_tenants_jobs_are_invisible_to_the_app_role(
    job_ctx: AppContext, tenant: str, other_tenant: str
) -> None:
    registry = JobRegistry()

    async def handler(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        return None

    kind = registry.register(JobKind(unique("private"), handler))
    await defer(staff_context(job_ctx, tenant), kind, {})
    sql = text("SELECT count(*) FROM jobs WHERE kind = :kind")
    async with unit_of_work(staff_context(job_ctx, other_tenant)) as unit:
        assert (await unit.session.execute(sql, {"kind": kind.name})).scalar_one() == 0
    async with unit_of_work(staff_context(job_ctx, tenant)) as unit:
        assert (await unit.session.execute(sql, {"kind": kind.name})).scalar_one() == 1


def test_worker_runs_jobs_without_a_broker(job_ctx: AppContext) -> None:
    ctx = dataclasses.replace(job_ctx, settings=make_settings(rabbitmq_url=None))
    names = [service.name for service in worker_services(ctx)]
    assert names == ["jobs"]


@pytest.mark.usefixtures("cli_env")
async def test_jobs_list_shows_jobs_with_their_last_error(
    job_ctx: AppContext, workers: list[JobWorker], tenant: str, other_tenant: str
) -> None:
    async def fails(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        raise DoNotRetry("customer was erased")

    async def fine(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        return None

    registry = JobRegistry()
    bad = registry.register(JobKind(unique("bad"), fails))
    good = registry.register(JobKind(unique("good"), fine, RetryPolicy(attempts=3)))
    failed_id = await defer(staff_context(job_ctx, tenant), bad, {})
    assert await new_worker(job_ctx, registry, workers).run_once() is True
    queued_id = await defer(staff_context(job_ctx, tenant), good, {})
    await defer(staff_context(job_ctx, other_tenant), good, {})

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(cli, ["jobs", "list", *args])

    result = await asyncio.to_thread(invoke, "--tenant", tenant)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "id", "kind", "tenant", "status", "attempts", "scheduled", "started", "finished"
    ]  # fmt: skip
    assert lines[1].split()[:5] == [str(queued_id), good.name, tenant, "queued", "0/3"]
    assert lines[1].split()[6:] == ["-", "-"]
    assert lines[2].split()[:5] == [str(failed_id), bad.name, tenant, "failed", "1/5"]
    assert lines[3] == "    last error: DoNotRetry: customer was erased"
    assert len(lines) == 4
    assert other_tenant not in result.output

    only_failed = await asyncio.to_thread(invoke, "--tenant", tenant, "--status", "failed")
    assert [line.split()[0] for line in only_failed.output.splitlines()[1::2]] == [str(failed_id)]
    one = await asyncio.to_thread(invoke, "--limit", "1", "--tenant", other_tenant)
    assert len(one.output.splitlines()) == 2
    bad_status = await asyncio.to_thread(invoke, "--status", "done")
    assert bad_status.exit_code == 2
    assert "--status must be one of" in bad_status.output
    bad_tenant = await asyncio.to_thread(invoke, "--tenant", "no spaces")
    assert bad_tenant.exit_code == 2


def test_role_service_principal_for_jobs() -> None:
    from patron.jobs.worker import Claim, job_principal

    claim = Claim(uuid.uuid4(), "acme", "x.y", {}, 1, 3, uuid.uuid4())
    principal = job_principal(claim)
    assert principal.roles == {Role.SERVICE}
    assert (principal.id, principal.tenant_id) == ("job:x.y", "acme")


async def test_a_lost_last_attempt_fails_the_job(
    job_ctx: AppContext, workers: list[JobWorker], db: asyncpg.Pool, tenant: str
) -> None:
    ran: list[int] = []

    async def handler(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        ran.append(1)

    registry = JobRegistry()
    kind = registry.register(JobKind(unique("once"), handler, RetryPolicy(attempts=1)))
    job_id = await defer(staff_context(job_ctx, tenant), kind, {})
    assert await new_worker(job_ctx, registry, workers).claim() is not None
    await db.execute(
        "UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1", job_id
    )
    assert await new_worker(job_ctx, registry, workers).run_once() is True
    failed = await job_row(db, job_id)
    assert (failed["status"], failed["attempts"], ran) == ("failed", 2, [])
    assert failed["last_error"] == "lease expired: the worker stopped or died"

"""The row-level security tenant is transaction-local: nothing leaks through the pool.

Every unit of work sets ``app.tenant_id`` inside its own transaction (patron.db.rls), so
a connection taken straight from the engine's pool afterwards, as readiness and metrics
do, sees no tenant, and the policies show it no tenant rows. Each test uses a pool small
enough that the connection it inspects is the one the unit used (same backend pid).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from patron.app import create_app
from patron.auth.principal import Role
from patron.context import AppContext, build_context
from patron.db.engine import create_app_engine
from patron.db.session import Database
from patron.tenancy import TenantId, trusted_tenant
from tests.conftest import ApiKeyFactory, make_settings
from tests.db.rows import insert_customer, insert_outbox_event

PID = text("SELECT pg_backend_pid()")
SEEN = text(
    "SELECT current_setting('app.tenant_id', true) AS tenant,"
    " (SELECT count(*) FROM customers) AS customers,"
    " (SELECT count(*) FROM outbox_events) AS events"
)
UNITS = ("unit_of_work", "read_only", "driver_reads", "driver_unit_of_work")


async def _pid_in(unit: Callable[[TenantId], AbstractAsyncContextManager[Any]], tenant: str) -> int:
    """Run ``unit`` for ``tenant``; returns its backend pid, after checking that the unit
    itself saw the tenant (so the test below is not vacuous)."""
    async with unit(trusted_tenant(tenant)) as executor:
        if isinstance(executor, asyncpg.Connection):
            pid, seen = (
                await executor.fetchval("SELECT pg_backend_pid()"),
                await executor.fetchval("SELECT count(*) FROM customers"),
            )
        else:
            pid = (await executor.execute(PID)).scalar_one()
            seen = (await executor.execute(text("SELECT count(*) FROM customers"))).scalar_one()
    assert seen == 1, "the unit itself must see its tenant's customer"
    return int(pid)


async def _straight_from_pool(engine: Any, count: int) -> list[tuple[int, Any, int, int]]:
    """Check ``count`` connections out of ``engine`` at once, as readiness does
    (``engine.connect()``); returns (pid, setting, customers, events) for each."""
    async with AsyncExitStack() as stack:
        connections: list[AsyncConnection] = [
            await stack.enter_async_context(engine.connect()) for _ in range(count)
        ]
        out = []
        for conn in connections:
            pid = (await conn.execute(PID)).scalar_one()
            row = (await conn.execute(SEEN)).one()
            out.append((pid, row.tenant, row.customers, row.events))
        return out


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[Database]:
    database = Database(
        create_app_engine(
            make_settings(database_pool_size=1, database_max_overflow=0), database_url
        )
    )
    yield database
    await database.dispose()


@pytest.fixture
async def tenant_customer(db: asyncpg.Pool, tenant: str) -> None:
    """One customer and one outbox event of ``tenant``, written as the superuser."""
    await insert_customer(db, tenant)
    await insert_outbox_event(db, tenant)


@pytest.mark.usefixtures("tenant_customer")
@pytest.mark.parametrize("kind", UNITS)
async def test_a_connection_straight_from_the_pool_sees_no_tenant(
    one_connection: Database, tenant: str, kind: str
) -> None:
    pid = await _pid_in(getattr(one_connection, kind), tenant)
    [(same_pid, setting, customers, events)] = await _straight_from_pool(one_connection.engine, 1)
    assert same_pid == pid  # the very connection the unit used
    assert setting in ("", None)
    assert (customers, events) == (0, 0)  # row-level security shows it nothing


@pytest.mark.usefixtures("tenant_customer")
@pytest.mark.parametrize("kind", UNITS)
async def test_nor_after_a_unit_that_failed(
    one_connection: Database, tenant: str, kind: str
) -> None:
    unit = getattr(one_connection, kind)

    async def failing() -> None:
        async with unit(trusted_tenant(tenant)):
            raise RuntimeError("the use case fails")

    with pytest.raises(RuntimeError, match="the use case fails"):
        await failing()
    [(_, setting, customers, events)] = await _straight_from_pool(one_connection.engine, 1)
    assert setting in ("", None)
    assert (customers, events) == (0, 0)


async def test_after_requests_over_http_every_pooled_connection_sees_no_tenant(
    settings: Any,
    database_url: str,
    api_key_headers: ApiKeyFactory,
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    """GET by id (driver read), create (session unit), upsert (driver unit) and a list (read
    only) through the app; then every connection of its pool, taken at once, is clean."""
    pool_size = 2
    ctx: AppContext = build_context(
        settings.model_copy(update={"database_pool_size": pool_size, "database_max_overflow": 0}),
        database_url,
    )
    app = create_app(ctx.settings, context=ctx)
    headers = await api_key_headers(Role.ADMIN, tenant)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://patron.test") as c:
            created = await c.post(
                "/api/v1/customers", json={"email": "a@example.com"}, headers=headers
            )
            assert created.status_code == 201, created.text
            customer_id = created.json()["id"]
            got = await c.get(f"/api/v1/customers/{customer_id}", headers=headers)
            assert got.status_code == 200, got.text
            upserted = await c.post(
                "/api/v1/customers/upsert",
                json={"email": "b@example.com", "first_name": "B"},
                headers=headers,
            )
            assert upserted.status_code == 201, upserted.text
            listed = await c.get("/api/v1/customers", headers=headers)
            assert listed.status_code == 200, listed.text
            assert len(listed.json()["customers"]) == 2
        assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 2
        seen = await asyncio.wait_for(_straight_from_pool(ctx.db.engine, pool_size), 10)
        assert len({pid for pid, *_ in seen}) == pool_size
        assert [(setting in ("", None), n, e) for _, setting, n, e in seen] == [
            (True, 0, 0)
        ] * pool_size
    finally:
        await ctx.close()

"""GET by id in one round trip: ``customer_by_id(tenant, id)`` (migration 0011, decision
0016) sets the row-level security tenant for its own statement only.

Row-level security must see the function's setting (tenant A never gets B's row, no
tenant gets nothing), the setting must end with the statement (a pooled connection never
carries a tenant), and inside a transaction the caller's own setting comes back.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from patron.customers.repository import READ_COLUMNS, CustomerRepository
from patron.db.engine import create_app_engine
from patron.db.session import Database
from patron.tenancy import trusted_tenant
from tests.conftest import make_settings

BY_ID = "SELECT * FROM customer_by_id($1, $2)"


async def _customer(db: asyncpg.Pool, tenant: str) -> uuid.UUID:
    """A live customer of ``tenant`` written as the superuser; its id."""
    found: uuid.UUID = await db.fetchval(
        "INSERT INTO customers (id, tenant_id, status, customer_type, external_ids,"
        " marketing_opt_in, tags, attributes, preferences, version, first_name)"
        " VALUES (gen_random_uuid(), $1, 'ACTIVE', 'RETAIL', '{}', false, '{}', '{}', '{}', 1,"
        " 'Ana') RETURNING id",
        tenant,
    )
    return found


@pytest.fixture
async def as_app(db: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection acting as ``patron_app`` (under row-level security), no transaction."""
    async with db.acquire() as conn:
        await conn.execute("SET ROLE patron_app")
        try:
            yield conn
        finally:
            await conn.execute("RESET ROLE")


async def test_the_function_returns_its_tenants_row_and_never_another_tenants(
    db: asyncpg.Pool, as_app: asyncpg.Connection, tenant: str, other_tenant: str
) -> None:
    mine, theirs = await _customer(db, tenant), await _customer(db, other_tenant)
    row = await as_app.fetchrow(BY_ID, tenant, mine)
    assert row is not None
    assert (row["id"], row["first_name"]) == (mine, "Ana")
    assert await as_app.fetchrow(BY_ID, tenant, theirs) is None
    assert await as_app.fetchrow(BY_ID, other_tenant, mine) is None


async def test_without_a_tenant_it_returns_nothing(
    db: asyncpg.Pool, as_app: asyncpg.Connection, tenant: str
) -> None:
    mine = await _customer(db, tenant)
    assert await as_app.fetchrow(BY_ID, "", mine) is None
    assert await as_app.fetchrow(BY_ID, None, mine) is None


async def test_row_level_security_alone_denies_another_tenants_row(
    db: asyncpg.Pool, tenant: str, other_tenant: str
) -> None:
    """The policy, not only the function's own filter, hides other tenants' rows: the
    view the function reads runs as the caller (``security_invoker``)."""
    theirs = await _customer(db, other_tenant)
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE patron_app")
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", tenant)
        assert await conn.fetchval("SELECT count(*) FROM customer_reads WHERE id = $1", theirs) == 0
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", other_tenant)
        assert await conn.fetchval("SELECT count(*) FROM customer_reads WHERE id = $1", theirs) == 1


async def test_the_tenant_ends_with_the_statement(
    db: asyncpg.Pool, as_app: asyncpg.Connection, tenant: str
) -> None:
    mine = await _customer(db, tenant)
    assert await as_app.fetchrow(BY_ID, tenant, mine) is not None
    assert await as_app.fetchval("SELECT current_setting('app.tenant_id', true)") in ("", None)
    assert await as_app.fetchval("SELECT count(*) FROM customers") == 0


async def test_inside_a_transaction_the_callers_tenant_comes_back(
    db: asyncpg.Pool, as_app: asyncpg.Connection, tenant: str, other_tenant: str
) -> None:
    theirs = await _customer(db, other_tenant)
    async with as_app.transaction():
        await as_app.execute("SELECT set_config('app.tenant_id', $1, true)", tenant)
        assert await as_app.fetchrow(BY_ID, other_tenant, theirs) is not None
        assert await as_app.fetchval("SELECT current_setting('app.tenant_id', true)") == tenant


async def test_the_view_has_the_repositorys_response_columns(as_app: asyncpg.Connection) -> None:
    """The function's row is the repository's (READ_COLUMNS): a column added to one and
    not the other fails here (then add a migration replacing the view)."""
    names = await as_app.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'customer_reads'::regclass"
        " AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
    )
    assert [r["attname"] for r in names] == [c.key for c in READ_COLUMNS]


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[Database]:
    database = Database(
        create_app_engine(
            make_settings(database_pool_size=1, database_max_overflow=0), database_url
        )
    )
    yield database
    await database.dispose()


async def test_a_statements_unit_has_no_transaction_and_no_tenant(
    db: asyncpg.Pool, one_connection: Database, tenant: str
) -> None:
    """``Database.driver_statements``: the repository's GET reads the row in one statement;
    a plain query on the same connection sees no tenant rows (safe denial), and the
    connection goes back to the pool with no tenant."""
    mine = await _customer(db, tenant)
    async with one_connection.driver_statements() as connection:
        assert not connection.is_in_transaction()
        row = await CustomerRepository(connection, trusted_tenant(tenant)).get_fast(mine)
        assert row is not None
        assert row["id"] == mine
        assert await connection.fetchval("SELECT count(*) FROM customers") == 0
        pid = await connection.fetchval("SELECT pg_backend_pid()")
    async with one_connection.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
        assert await driver.fetchval("SELECT pg_backend_pid()") == pid
        assert await driver.fetchval("SELECT current_setting('app.tenant_id', true)") in ("", None)
        assert await driver.fetchval("SELECT count(*) FROM customers") == 0

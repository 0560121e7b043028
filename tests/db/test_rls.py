"""Row-level security: the second wall behind the repositories.

These tests bypass the repositories on purpose and run raw SQL through the application's
own engine (role ``patron_app``), as a forgotten tenant filter would. The tables they check
come from the database catalog (every table of schema ``public`` with a ``tenant_id``
column), not from a list kept by hand, so a new table cannot escape them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from patron.auth.principal import Role
from patron.context import AppContext
from patron.db.engine import create_app_engine
from patron.db.session import Database
from patron.models import TENANT_TABLES
from patron.tenancy import trusted_tenant
from tests.conftest import ApiKeyFactory, create_customer

# Tables of schema public with a tenant_id column, as the database itself knows them.
_CATALOG = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND EXISTS (
    SELECT 1 FROM pg_attribute a
    WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
)
ORDER BY c.relname
"""
# Read before the tenant is known, so it has no policy (decision 0001, "Not covered").
WITHOUT_POLICY = frozenset({"api_keys"})
# The one rule a policy that applies to the application's role may have (decision 0001).
TENANT_RULE = "((tenant_id)::text = current_setting('app.tenant_id'::text, true))"
# Policies that only the cross-tenant background role gets (CONTRIBUTING.md "Hot paths").
SYSTEM_ROLE = "patron_system"
# A value for each column type that must be given (NOT NULL, no default).
_VALUES = {
    "uuid": "gen_random_uuid()",
    "text": "'x'",
    "varchar": "'x'",
    "bool": "false",
    "int4": "0",
    "int8": "0",
    "numeric": "0",
    "jsonb": "'{}'",
    "bytea": "'\\x00'",
    "timestamptz": "now()",
    "date": "current_date",
    "_text": "'{}'",
}


@pytest.fixture
async def tenant_tables(db: asyncpg.Pool) -> list[str]:
    """Every table with a ``tenant_id`` column that must carry row-level security."""
    return [r["relname"] for r in await db.fetch(_CATALOG) if r["relname"] not in WITHOUT_POLICY]


async def _insert_row(conn: asyncpg.Connection, table: str) -> str:
    """``INSERT`` of one row into ``table`` for the tenant ``$1``, every required column
    filled with a placeholder of its type (foreign keys are not checked in the caller's
    ``session_replication_role = replica``)."""
    columns = await conn.fetch(
        "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped"
        " AND a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''"
        " AND a.attname <> 'tenant_id' ORDER BY a.attnum",
        table,
    )
    unknown = [c["typname"] for c in columns if c["typname"] not in _VALUES]
    assert not unknown, f"{table}: give _VALUES a placeholder for {unknown}"
    names = ", ".join(["tenant_id", *(f'"{c["attname"]}"' for c in columns)])
    values = ", ".join(["$1", *(_VALUES[c["typname"]] for c in columns)])
    return f'INSERT INTO "{table}" ({names}) VALUES ({values})'  # noqa: S608 - catalog names


@pytest.fixture
async def as_app_role(db: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection in a transaction that is always rolled back; the test writes
    what it needs, then ``SET LOCAL ROLE patron_app`` to look as the application does."""
    async with db.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            yield conn
        finally:
            await transaction.rollback()


async def test_the_catalog_and_the_models_name_the_same_tenant_tables(
    db: asyncpg.Pool, tenant_tables: list[str]
) -> None:
    assert set(tenant_tables) == set(TENANT_TABLES)
    # the exemption is not stale: the table still exists and has a tenant_id column
    assert {r["relname"] for r in await db.fetch(_CATALOG)} >= WITHOUT_POLICY


async def test_every_tenant_table_forces_row_level_security_with_the_tenant_policy(
    db: asyncpg.Pool, tenant_tables: list[str]
) -> None:
    problems = []
    for table in tenant_tables:
        flags = await db.fetchrow(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = $1::regclass",
            table,
        )
        if not (flags["relrowsecurity"] and flags["relforcerowsecurity"]):
            problems.append(f"{table}: row-level security not enabled and forced ({dict(flags)})")
        policies = await db.fetch(
            "SELECT policyname, roles, permissive, qual, with_check FROM pg_policies"
            " WHERE schemaname = 'public' AND tablename = $1",
            table,
        )
        tenant_policies = [
            p for p in policies if (p["qual"], p["with_check"]) == (TENANT_RULE, TENANT_RULE)
        ]
        if not tenant_policies:
            problems.append(f"{table}: no policy {TENANT_RULE}")
        for p in policies:
            if p not in tenant_policies and list(p["roles"]) != [SYSTEM_ROLE]:
                problems.append(f"{table}: policy {p['policyname']} opens it wider ({dict(p)})")
    assert problems == []


async def test_the_app_role_sees_and_changes_no_rows_of_another_tenant(
    as_app_role: asyncpg.Connection, tenant_tables: list[str], tenant: str, other_tenant: str
) -> None:
    conn = as_app_role
    inserts = {table: await _insert_row(conn, table) for table in tenant_tables}
    await conn.execute("SET LOCAL session_replication_role = replica")
    for insert in inserts.values():
        await conn.execute(insert, other_tenant)
    await conn.execute("SET LOCAL ROLE patron_app")
    await conn.execute("SELECT set_config('app.tenant_id', $1, true)", tenant)
    problems = []
    for table, insert in inserts.items():
        quoted = f'"{table}"'
        others = await conn.fetchval(
            f"SELECT count(*) FROM {quoted} WHERE tenant_id <> $1",  # noqa: S608 - catalog names
            tenant,
        )
        if others:
            problems.append(f"{table}: sees {others} rows of other tenants")
        for verb, sql in (
            ("UPDATE", f"UPDATE {quoted} SET tenant_id = $1 WHERE tenant_id = $2"),  # noqa: S608
            ("DELETE", f"DELETE FROM {quoted} WHERE tenant_id = $2 AND tenant_id <> $1"),  # noqa: S608
        ):
            if await conn.fetchval("SELECT has_table_privilege($1, $2)", quoted, verb):
                status = await conn.execute(sql, tenant, other_tenant)
                if status != f"{verb} 0":
                    problems.append(f"{table}: {verb} of another tenant's row gave {status}")
        try:
            async with conn.transaction():  # a savepoint: the refused insert undoes only itself
                await conn.execute(insert, other_tenant)
        except asyncpg.InsufficientPrivilegeError as refused:
            if "row-level security" not in str(refused):
                problems.append(f"{table}: insert refused for another reason: {refused}")
        else:
            problems.append(f"{table}: accepted a row of another tenant")
    # the rows are there: the tenant they belong to sees each of them
    await conn.execute("SELECT set_config('app.tenant_id', $1, true)", other_tenant)
    for table in inserts:
        own = await conn.fetchval(
            f'SELECT count(*) FROM "{table}" WHERE tenant_id = $1',  # noqa: S608 - catalog names
            other_tenant,
        )
        if own != 1:
            problems.append(f"{table}: its own tenant sees {own} of 1 row")
    assert problems == []


@pytest.fixture
async def two_tenants(
    client: httpx.AsyncClient, api_key_headers: ApiKeyFactory, tenant: str, other_tenant: str
) -> None:
    await create_customer(
        client, await api_key_headers(Role.ADMIN, tenant), email="mine@example.com"
    )
    await create_customer(
        client, await api_key_headers(Role.ADMIN, other_tenant), email="theirs@example.com"
    )


@pytest.mark.usefixtures("two_tenants")
async def test_query_without_tenant_filter_sees_only_own_tenant(
    app_ctx: AppContext, tenant: str, other_tenant: str
) -> None:
    async with app_ctx.db.unit_of_work(trusted_tenant(tenant)) as session:
        emails = (await session.execute(text("SELECT email FROM customers"))).scalars().all()
        identities = (
            (await session.execute(text("SELECT DISTINCT tenant_id FROM customer_identities")))
            .scalars()
            .all()
        )
        events = (
            (await session.execute(text("SELECT DISTINCT tenant_id FROM outbox_events")))
            .scalars()
            .all()
        )
    assert emails == ["mine@example.com"]
    assert identities == [tenant]
    assert events == [tenant]


@pytest.mark.usefixtures("two_tenants")
async def test_no_tenant_set_sees_nothing(app_ctx: AppContext, tenant_tables: list[str]) -> None:
    async with app_ctx.db.unit_of_work(None) as session:
        for table in tenant_tables:
            count = text(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - catalog names
            assert (await session.execute(count)).scalar_one() == 0, table


@pytest.mark.usefixtures("two_tenants")
async def test_cannot_write_into_another_tenant(
    app_ctx: AppContext, tenant: str, other_tenant: str
) -> None:
    async with app_ctx.db.unit_of_work(trusted_tenant(tenant)) as session:
        updated = await session.execute(
            text("UPDATE customers SET first_name = 'pwned' WHERE tenant_id = :t"),
            {"t": other_tenant},
        )
        assert updated.rowcount == 0
    with pytest.raises(DBAPIError, match="row-level security"):
        async with app_ctx.db.unit_of_work(trusted_tenant(tenant)) as session:
            await session.execute(
                text(
                    "INSERT INTO customers (id, tenant_id, status, customer_type, external_ids, marketing_opt_in, tags, attributes, preferences, version) "
                    "VALUES (gen_random_uuid(), :t, 'ACTIVE', 'RETAIL', '{}', false, '{}', '{}', '{}', 1)"
                ),
                {"t": other_tenant},
            )


async def test_app_role_is_not_superuser_and_cannot_bypass(app_ctx: AppContext) -> None:
    async with app_ctx.db.unit_of_work(None) as session:
        row = (
            await session.execute(
                text(
                    "SELECT current_user, r.rolsuper, r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user"
                )
            )
        ).one()
        forced = (
            await session.execute(
                text(
                    "SELECT bool_and(relforcerowsecurity AND relrowsecurity) FROM pg_class WHERE relname = ANY(:t)"
                ),
                {"t": list(TENANT_TABLES)},
            )
        ).scalar_one()
    assert tuple(row) == ("patron_app", False, False)
    assert forced is True


@pytest.mark.usefixtures("two_tenants")
async def test_tenant_setting_survives_pool_reuse_and_rollback(
    settings: Any, database_url: str, tenant: str, other_tenant: str
) -> None:
    """One pooled connection, reused: each unit sees its own tenant, even after a rollback."""
    db = Database(
        create_app_engine(
            settings.model_copy(update={"database_pool_size": 1, "database_max_overflow": 0}),
            database_url,
        )
    )
    mine, theirs = trusted_tenant(tenant), trusted_tenant(other_tenant)
    emails = text("SELECT email FROM customers")
    try:
        async with db.read_only(mine) as session:
            assert (await session.execute(emails)).scalars().all() == ["mine@example.com"]

        # set "theirs" inside a transaction that then rolls back: the server reverts to "mine"
        async def fail_after_reading() -> None:
            async with db.unit_of_work(theirs) as session:
                assert (await session.execute(emails)).scalars().all() == ["theirs@example.com"]
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await fail_after_reading()
        async with db.unit_of_work(theirs) as session:
            assert (await session.execute(emails)).scalars().all() == ["theirs@example.com"]
        async with db.unit_of_work(None) as session:
            assert (await session.execute(emails)).scalars().all() == []
        async with db.read_only(mine) as session:
            assert (await session.execute(emails)).scalars().all() == ["mine@example.com"]
    finally:
        await db.dispose()


async def test_like_is_leakproof_so_search_can_use_its_index(app_ctx: AppContext) -> None:
    """Migration 0003 (run here as a superuser) marks textlike LEAKPROOF: only then may the
    planner use the trigram index for LIKE before the row-level security condition."""
    async with app_ctx.db.unit_of_work(None) as session:
        leakproof = (
            await session.execute(
                text(
                    "SELECT proleakproof FROM pg_proc WHERE oid = 'textlike(text,text)'::regprocedure"
                )
            )
        ).scalar_one()
    assert leakproof is True

"""Row-level security: the second wall behind the repositories.

These tests bypass the repositories on purpose and run raw SQL through the application's
own engine (role ``patron_app``), as a forgotten tenant filter would.
"""

from __future__ import annotations

from typing import Any

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
async def test_no_tenant_set_sees_nothing(app_ctx: AppContext) -> None:
    async with app_ctx.db.unit_of_work(None) as session:
        for table in TENANT_TABLES:
            count = text(f"SELECT count(*) FROM {table}")  # noqa: S608 - constant table names
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

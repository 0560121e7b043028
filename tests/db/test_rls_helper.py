"""patron.db.rls.enable_tenant_rls: the migration helper that puts a new tenant table
behind row-level security, applied through Alembic's ``op`` to a scratch table."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from patron.context import AppContext
from patron.db.rls import disable_tenant_rls, enable_tenant_rls, tenant_rls_statements
from patron.tenancy import trusted_tenant


def _with_op(connection: Connection, apply: Any, table: str) -> None:
    """Run ``apply(table)`` as a migration would: with Alembic's ``op`` bound."""
    with Operations.context(MigrationContext.configure(connection)):
        apply(table)


@pytest.fixture
async def scratch_table(admin_engine: Any) -> Any:
    """A new tenant table (created as the migrations' role), dropped afterwards."""
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    async with admin_engine.begin() as conn:
        await conn.execute(
            text(f"CREATE TABLE {name} (id int PRIMARY KEY, tenant_id text NOT NULL)")
        )
    yield name
    async with admin_engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {name}"))


async def test_it_enables_and_forces_rls_with_the_tenant_policy(
    admin_engine: Any, scratch_table: str
) -> None:
    async with admin_engine.begin() as conn:
        await conn.run_sync(_with_op, enable_tenant_rls, scratch_table)
        flags = (
            await conn.execute(
                text("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = :t"),
                {"t": scratch_table},
            )
        ).one()
        policies = (
            await conn.execute(
                text(
                    "SELECT policyname, cmd, roles::text[] AS roles, qual, with_check"
                    " FROM pg_policies WHERE tablename = :t"
                ),
                {"t": scratch_table},
            )
        ).all()
        grants = (
            await conn.execute(
                text(
                    "SELECT array_agg(privilege_type ORDER BY privilege_type)"
                    " FROM information_schema.role_table_grants"
                    " WHERE table_name = :t AND grantee = 'patron_app'"
                ),
                {"t": scratch_table},
            )
        ).scalar_one()
    condition = "(tenant_id = current_setting('app.tenant_id'::text, true))"
    assert tuple(flags) == (True, True)
    assert [tuple(p) for p in policies] == [
        ("tenant_isolation", "ALL", ["public"], condition, condition)
    ]
    assert grants == ["DELETE", "INSERT", "SELECT", "UPDATE"]


async def test_the_app_role_sees_and_writes_only_its_tenant(
    admin_engine: Any, scratch_table: str, app_ctx: AppContext, tenant: str, other_tenant: str
) -> None:
    async with admin_engine.begin() as conn:
        await conn.run_sync(_with_op, enable_tenant_rls, scratch_table)
        await conn.execute(
            text(f"INSERT INTO {scratch_table} VALUES (1, :a), (2, :b)"),  # noqa: S608
            {"a": tenant, "b": other_tenant},
        )
    rows = text(f"SELECT id FROM {scratch_table} ORDER BY id")  # noqa: S608
    async with app_ctx.db.unit_of_work(trusted_tenant(tenant)) as session:
        assert (await session.execute(rows)).scalars().all() == [1]
        moved = await session.execute(
            text(f"UPDATE {scratch_table} SET tenant_id = :a WHERE id = 2"),  # noqa: S608
            {"a": tenant},
        )
        assert moved.rowcount == 0  # the other tenant's row is invisible, so untouched
    async with app_ctx.db.unit_of_work(None) as session:
        assert (await session.execute(rows)).scalars().all() == []
    with pytest.raises(DBAPIError, match="row-level security"):
        async with app_ctx.db.unit_of_work(trusted_tenant(tenant)) as session:
            await session.execute(
                text(f"INSERT INTO {scratch_table} VALUES (3, :b)"),  # noqa: S608
                {"b": other_tenant},
            )
    async with admin_engine.connect() as conn:
        stored = (
            await conn.execute(text(f"SELECT id, tenant_id FROM {scratch_table} ORDER BY id"))  # noqa: S608
        ).all()
    assert [tuple(r) for r in stored] == [(1, tenant), (2, other_tenant)]


async def test_disable_undoes_it(admin_engine: Any, scratch_table: str) -> None:
    async with admin_engine.begin() as conn:
        await conn.run_sync(_with_op, enable_tenant_rls, scratch_table)
        await conn.run_sync(_with_op, disable_tenant_rls, scratch_table)
        state = (
            await conn.execute(
                text(
                    "SELECT relrowsecurity, relforcerowsecurity,"
                    " (SELECT count(*) FROM pg_policies WHERE tablename = :t)"
                    " FROM pg_class WHERE relname = :t"
                ),
                {"t": scratch_table},
            )
        ).one()
    assert tuple(state) == (False, False, 0)


@pytest.mark.parametrize("name", ["Customers", "x; DROP TABLE customers", "a b", ""])
def test_only_plain_table_names_are_accepted(name: str) -> None:
    with pytest.raises(ValueError, match="not a plain table name"):
        tenant_rls_statements(name)

"""The use-case layer (``patron.usecases``): operations own their unit of work, nested use
cases join it, and a unit never spans two tenants or writes inside a read."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from patron.context import AppContext
from patron.customers.errors import CustomerNotFound
from patron.customers.schemas import CustomerCreate
from patron.customers.service import CustomerService
from patron.usecases import current_unit, read_unit, unit_of_work
from tests.conftest import outbox_rows
from tests.contexts import staff_context


class Boom(Exception):
    pass


async def test_an_operation_commits_its_row_and_event_before_it_returns(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool
) -> None:
    customers = CustomerService(staff_context(app_ctx, tenant))
    created = await customers.create(CustomerCreate(email="ada@example.com"))
    assert current_unit() is None
    row = await db.fetchrow("SELECT email FROM customers WHERE id = $1", created.id)
    assert row is not None
    assert row["email"] == "ada@example.com"
    assert [e["type"] for e in await outbox_rows(db, tenant)] == ["customer.created"]


async def test_nested_operations_join_one_transaction_and_roll_back_together(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool
) -> None:
    ctx = staff_context(app_ctx, tenant)
    customers = CustomerService(ctx)
    created = await customers.create(CustomerCreate(email="grace@example.com"))

    async def block_then_fail() -> None:
        async with unit_of_work(ctx) as unit:
            await customers.block(created.id, "spam")
            await customers.record_interaction(created.id, None, "chat")
            assert current_unit() is unit  # both ran in the caller's unit
            raise Boom

    with pytest.raises(Boom):
        await block_then_fail()
    row = await db.fetchrow(
        "SELECT status, last_interaction_at FROM customers WHERE id = $1", created.id
    )
    assert (row["status"], row["last_interaction_at"]) == ("ACTIVE", None)
    assert [e["type"] for e in await outbox_rows(db, tenant)] == ["customer.created"]


async def test_a_failing_operation_leaves_nothing_behind(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool
) -> None:
    customers = CustomerService(staff_context(app_ctx, tenant))
    with pytest.raises(CustomerNotFound):
        await customers.block(uuid.uuid4(), "spam")
    assert await outbox_rows(db, tenant) == []
    assert current_unit() is None


async def test_a_unit_never_serves_another_tenant(
    app_ctx: AppContext, tenant: str, other_tenant: str
) -> None:
    mine, theirs = staff_context(app_ctx, tenant), staff_context(app_ctx, other_tenant)
    async with unit_of_work(mine):
        with pytest.raises(RuntimeError, match="another tenant"):
            await CustomerService(theirs).require(uuid.uuid4())


async def test_a_write_inside_a_read_unit_is_refused(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool
) -> None:
    ctx = staff_context(app_ctx, tenant)
    async with read_unit(ctx):
        with pytest.raises(RuntimeError, match="inside a read unit"):
            await CustomerService(ctx).create(CustomerCreate(email="x@example.com"))
    assert await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant) == 0


async def test_a_service_outside_an_operation_has_no_unit(app_ctx: AppContext, tenant: str) -> None:
    with pytest.raises(RuntimeError, match="outside a unit of work"):
        _ = CustomerService(staff_context(app_ctx, tenant)).repo


async def test_http_and_direct_calls_answer_alike(
    client: httpx.AsyncClient, admin: dict[str, str], app_ctx: AppContext, tenant: str
) -> None:
    """A transport adds nothing: the HTTP answer is the service's result, rendered."""
    created = await CustomerService(staff_context(app_ctx, tenant)).create(
        CustomerCreate(email="lin@example.com", first_name="Lin")
    )
    response = await client.get(f"/api/v1/customers/{created.id}", headers=admin)
    assert response.status_code == 200
    assert response.json() == created.model_dump(mode="json")
    assert response.headers["ETag"] == f'"{created.version}"'

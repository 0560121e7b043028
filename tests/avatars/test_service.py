"""Avatar use cases called without HTTP (a ServiceContext built here): ``replace`` owns its
unit of work and deletes the previous file only after its change commits."""

from __future__ import annotations

import io
import uuid

import asyncpg
import pytest
from fastapi import UploadFile

from patron.avatars.service import AvatarService, avatar_path
from patron.context import AppContext
from patron.customers.schemas import CustomerCreate
from patron.customers.service import CustomerService
from patron.storage import Storage
from patron.usecases import ServiceContext, unit_of_work
from tests.avatars.test_endpoints import customer_row, jpeg_with_gps
from tests.conftest import outbox_rows
from tests.contexts import staff_context
from tests.storage.fixtures import stored_keys


def _jpeg(size: tuple[int, int] = (64, 48)) -> UploadFile:
    return UploadFile(io.BytesIO(jpeg_with_gps(size)), filename="me.jpg")


async def _customer(ctx: ServiceContext) -> uuid.UUID:
    return (await CustomerService(ctx).create(CustomerCreate(email="ada@example.com"))).id


async def test_replace_outside_http_commits_then_deletes_the_previous_file(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool, storage: Storage
) -> None:
    ctx = staff_context(app_ctx, tenant)
    customer_id = await _customer(ctx)
    assert await AvatarService(ctx).replace(customer_id, _jpeg()) == avatar_path(customer_id)
    first = (await customer_row(db, str(customer_id)))["avatar_storage_key"]

    await AvatarService(ctx).replace(customer_id, _jpeg((10, 10)))

    second = (await customer_row(db, str(customer_id)))["avatar_storage_key"]
    assert second != first
    assert await stored_keys(storage) == [second]
    events = await outbox_rows(db, tenant, "customer.avatar_changed")
    assert [e["data"]["avatar_url"] for e in events] == [avatar_path(customer_id)] * 2


async def test_replace_inside_an_open_unit_is_refused_and_changes_nothing(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool, storage: Storage
) -> None:
    ctx = staff_context(app_ctx, tenant)
    customer_id = await _customer(ctx)
    await AvatarService(ctx).replace(customer_id, _jpeg())
    before = dict(await customer_row(db, str(customer_id)))
    kept = await stored_keys(storage)

    async def replace_in_unit() -> None:
        async with unit_of_work(ctx):
            await AvatarService(ctx).replace(customer_id, _jpeg((10, 10)))

    with pytest.raises(RuntimeError, match="must own its unit of work"):
        await replace_in_unit()
    assert dict(await customer_row(db, str(customer_id))) == before
    assert await stored_keys(storage) == kept
    assert len(await outbox_rows(db, tenant, "customer.avatar_changed")) == 1

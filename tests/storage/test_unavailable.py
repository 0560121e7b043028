"""A storage backend that refuses files: the one ``StorageUnavailable`` (503) for documents
and avatars alike, and nothing written (no row, no event, no changed customer)."""

from __future__ import annotations

import asyncpg
import httpx

from patron.storage import LocalStorage
from tests.avatars.test_endpoints import customer_row, jpeg_with_gps, post_avatar
from tests.conftest import create_customer, outbox_rows
from tests.documents.test_endpoints import PDF, document_rows, upload


async def test_document_upload_is_503_and_writes_nothing(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    broken_storage: LocalStorage,
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    response = await upload(client, admin, customer["id"], PDF)
    assert response.status_code == 503, response.text
    body = response.json()
    assert (body["type"], body["title"], body["detail"]) == (
        "/problems/storage-unavailable",
        "Service Unavailable",
        "the file could not be stored; try again",
    )
    assert await document_rows(db, tenant) == []
    assert await outbox_rows(db, tenant, "customer.document_added") == []


async def test_avatar_upload_is_503_and_leaves_the_customer_unchanged(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    broken_storage: LocalStorage,
) -> None:
    customer = await create_customer(client, admin, first_name="Ada")
    before = dict(await customer_row(db, customer["id"]))
    response = await post_avatar(client, admin, customer["id"], jpeg_with_gps())
    assert response.status_code == 503, response.text
    body = response.json()
    assert (body["type"], body["detail"]) == (
        "/problems/storage-unavailable",
        "the avatar could not be stored; try again",
    )
    assert dict(await customer_row(db, customer["id"])) == before
    assert await outbox_rows(db, tenant, "customer.avatar_changed") == []
    assert [e["type"] for e in await outbox_rows(db, tenant)] == ["customer.created"]

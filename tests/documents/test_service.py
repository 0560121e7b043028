"""Document use cases called without HTTP (a ServiceContext built here, as a job or the
CLI would): they own their unit of work, and files follow their rows' commits."""

from __future__ import annotations

import io
import uuid
from datetime import date

import asyncpg
import pytest
from fastapi import UploadFile

from patron.context import AppContext
from patron.customers.schemas import CustomerCreate
from patron.customers.service import CustomerService
from patron.documents.errors import (
    DocumentAlreadyReviewed,
    DocumentFileUnavailable,
    DocumentHasNoFile,
    DocumentNotFound,
    DuplicateDocument,
)
from patron.documents.schemas import DocumentType
from patron.documents.service import DocumentService, NewDocument
from patron.errors import PatronError
from patron.storage import Storage, StorageUnavailable
from patron.usecases import ServiceContext, current_unit, unit_of_work
from tests.conftest import outbox_rows
from tests.contexts import staff_context
from tests.documents.test_endpoints import PDF, document_rows
from tests.problems import problem_of
from tests.storage.fixtures import stored_keys

PASSPORT = NewDocument(DocumentType.PASSPORT, "X1234567", "DE", date(2031, 5, 1))


async def _added(ctx: ServiceContext) -> tuple[uuid.UUID, uuid.UUID]:
    customer = await CustomerService(ctx).create(CustomerCreate(email="ada@example.com"))
    upload = UploadFile(io.BytesIO(PDF), filename="passport.pdf")
    document = await DocumentService(ctx).add(customer.id, PASSPORT, upload)
    return customer.id, document.id


async def test_add_and_remove_outside_http_commit_and_delete_the_file_after(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool, storage: Storage
) -> None:
    ctx = staff_context(app_ctx, tenant)
    customer_id, document_id = await _added(ctx)
    [row] = await document_rows(db, tenant)
    assert await stored_keys(storage) == [row["storage_key"]]

    await DocumentService(ctx).remove(customer_id, document_id)

    assert current_unit() is None
    assert await document_rows(db, tenant) == []
    assert await stored_keys(storage) == []
    [event] = await outbox_rows(db, tenant, "customer.document_removed")
    assert event["data"]["document"]["id"] == str(document_id)


async def test_remove_inside_an_open_unit_is_refused_and_keeps_row_and_file(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool, storage: Storage
) -> None:
    ctx = staff_context(app_ctx, tenant)
    customer_id, document_id = await _added(ctx)
    kept = await stored_keys(storage)

    async def remove_in_unit() -> None:
        async with unit_of_work(ctx):
            await DocumentService(ctx).remove(customer_id, document_id)

    with pytest.raises(RuntimeError, match="must own its unit of work"):
        await remove_in_unit()
    assert len(await document_rows(db, tenant)) == 1
    assert await stored_keys(storage) == kept
    assert await outbox_rows(db, tenant, "customer.document_removed") == []


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (
            DocumentNotFound(uuid.UUID(int=7)),
            {
                "type": "/problems/not-found",
                "status": 404,
                "detail": "document not found",
                "document_id": str(uuid.UUID(int=7)),
            },
        ),
        (
            DocumentHasNoFile(uuid.UUID(int=7)),
            {
                "type": "/problems/not-found",
                "status": 404,
                "detail": "this document has no file",
                "document_id": str(uuid.UUID(int=7)),
            },
        ),
        (
            DocumentFileUnavailable(),
            {
                "type": "/problems/not-found",
                "status": 404,
                "detail": "the file of this document is not available",
            },
        ),
        (
            DuplicateDocument(uuid.UUID(int=9)),
            {
                "type": "/problems/conflict",
                "status": 409,
                "detail": "a document with this type, issuing country and number already exists",
                "conflicting_customer_id": str(uuid.UUID(int=9)),
            },
        ),
        (
            DuplicateDocument(None),
            {
                "type": "/problems/conflict",
                "status": 409,
                "detail": "a document with this type, issuing country and number already exists",
                "conflicting_customer_id": None,
            },
        ),
        (
            DocumentAlreadyReviewed("VERIFIED"),
            {
                "type": "/problems/conflict",
                "status": 409,
                "detail": "document is already VERIFIED",
                "document_status": "VERIFIED",
            },
        ),
        (
            StorageUnavailable("the file could not be stored; try again"),
            {
                "type": "/problems/storage-unavailable",
                "status": 503,
                "detail": "the file could not be stored; try again",
            },
        ),
    ],
)
def test_error_classes_render_the_problem_bodies_of_before(
    error: PatronError, problem: dict[str, object]
) -> None:
    assert problem_of(error) == problem

"""HTTP routes of customer documents (API.md "Profile data").

Roles: admin, manager, service, and the customer for their own documents; verify and
reject: admin and manager. The customer is checked by a dependency that runs before the
form is validated, so another tenant's customer is 404 whatever the body.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response, StreamingResponse

from patron.auth.principal import Role
from patron.customers.service import CustomerService
from patron.documents.schemas import (
    DocumentPage,
    DocumentRead,
    DocumentStatus,
    DocumentType,
    RejectRequest,
)
from patron.documents.service import EXTENSIONS, DocumentService, NewDocument
from patron.http.scope import RequestContext, Scope
from patron.kit.keyset import Window
from patron.kit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from patron.storage import delete_quietly

router = APIRouter(prefix="/customers/{customer_id}/documents", tags=["documents"])

ADMIN, MANAGER, SERVICE = Role.ADMIN, Role.MANAGER, Role.SERVICE
HOLDERS = Scope(ADMIN, MANAGER, SERVICE, customer_self=True)
REVIEWERS = Scope(ADMIN, MANAGER)


def service(ctx: RequestContext) -> DocumentService:
    return DocumentService(
        session=ctx.session,
        tenant=ctx.tenant,
        settings=ctx.app.settings,
        keyring=ctx.app.keyring,
        actor=ctx.principal,
        storage=ctx.app.storage,
        customers=CustomerService(ctx),
    )


async def live_customer(
    customer_id: uuid.UUID, ctx: Annotated[RequestContext, Depends(HOLDERS, scope="function")]
) -> RequestContext:
    """The request context once ``customer_id`` is known to be a live customer (else 404),
    resolved before the multipart form is validated."""
    await CustomerService(ctx).require(customer_id)
    return ctx


@router.get("", response_model=DocumentPage, summary="List a customer's documents")
async def list_documents(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(HOLDERS, scope="function")],
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> DocumentPage:
    return await service(ctx).list(customer_id, Window(page, page_size, cursor))


@router.post(
    "",
    status_code=201,
    response_model=DocumentRead,
    summary="Add a document with its file",
    description=(
        "Multipart form. `file` must be a PDF, JPEG or PNG by its content (at most 10 MiB). "
        "`number` is stored encrypted and shown masked; the same type, issuing country and "
        "number cannot belong to two customers (409 with `conflicting_customer_id`)."
    ),
)
async def add_document(
    customer_id: uuid.UUID,
    request: Request,
    ctx: Annotated[RequestContext, Depends(live_customer)],
    type: Annotated[DocumentType, Form()],
    number: Annotated[str, Form(min_length=1, max_length=100)],
    issuing_country: Annotated[str, Form(min_length=2, max_length=2)],
    file: Annotated[UploadFile, File(description="PDF, JPEG or PNG, at most 10 MiB")],
    expires_on: Annotated[date | None, Form()] = None,
) -> Response:
    fields = NewDocument(
        type=type, number=number, issuing_country=issuing_country, expires_on=expires_on
    )
    document = await service(ctx).add(customer_id, fields, file)
    location = request.url_for(
        "get_document", customer_id=str(customer_id), document_id=str(document.id)
    ).path
    return Response(
        document.model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers={"Location": location},
    )


@router.get("/{document_id}", response_model=DocumentRead, summary="Read a document")
async def get_document(
    customer_id: uuid.UUID,
    document_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(HOLDERS, scope="function")],
) -> DocumentRead:
    return await service(ctx).get(customer_id, document_id)


@router.get(
    "/{document_id}/file",
    summary="Download a document's file",
    response_class=StreamingResponse,
    responses={200: {"content": {m: {} for m in EXTENSIONS}, "description": "The file"}},
)
async def download_document(
    customer_id: uuid.UUID,
    document_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(HOLDERS, scope="function")],
) -> StreamingResponse:
    document, chunks = await service(ctx).open_file(customer_id, document_id)
    content_type = document.content_type or "application/octet-stream"
    filename = f"{document.type.value.lower()}-{document.id}.{EXTENSIONS.get(content_type, 'bin')}"
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    if document.size_bytes is not None:
        headers["Content-Length"] = str(document.size_bytes)
    return StreamingResponse(chunks, media_type=content_type, headers=headers)


@router.delete("/{document_id}", status_code=204, summary="Remove a document and its file")
async def delete_document(
    customer_id: uuid.UUID,
    document_id: uuid.UUID,
    background: BackgroundTasks,
    ctx: Annotated[RequestContext, Depends(HOLDERS, scope="function")],
) -> Response:
    key = await service(ctx).remove(customer_id, document_id)
    if key:
        # After the response, so after the commit: never delete a file whose row may survive.
        background.add_task(delete_quietly, ctx.app.storage, key)
    return Response(status_code=204)


@router.post(
    "/{document_id}/verify",
    response_model=DocumentRead,
    summary="Mark a pending document verified",
    responses={409: {"description": "The document was already verified or rejected"}},
)
async def verify_document(
    customer_id: uuid.UUID,
    document_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(REVIEWERS, scope="function")],
) -> DocumentRead:
    return await service(ctx).review(customer_id, document_id, DocumentStatus.VERIFIED)


@router.post(
    "/{document_id}/reject",
    response_model=DocumentRead,
    summary="Mark a pending document rejected",
    responses={409: {"description": "The document was already verified or rejected"}},
)
async def reject_document(
    customer_id: uuid.UUID,
    document_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(REVIEWERS, scope="function")],
    body: RejectRequest | None = None,
) -> DocumentRead:
    reason = body.reason if body else None
    return await service(ctx).review(customer_id, document_id, DocumentStatus.REJECTED, reason)

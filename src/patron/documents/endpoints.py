"""HTTP routes of customer documents (API.md "Profile data").

Roles: admin, manager, service, and the customer for their own documents; verify and
reject: admin and manager. The customer is checked by a dependency that runs before the
form is validated, so another tenant's customer is 404 whatever the body.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response, StreamingResponse

from patron.addresses.schemas import COUNTRY_PATTERN
from patron.auth.principal import Role
from patron.customers.dependencies import known_customer
from patron.documents.schemas import (
    DocumentPage,
    DocumentRead,
    DocumentStatus,
    DocumentType,
    RejectRequest,
)
from patron.documents.service import EXTENSIONS, DocumentService, NewDocument
from patron.http.openapi import success_headers
from patron.http.paging import Paging
from patron.http.scope import RequestContext, Scope
from patron.kit.jsonschema import not_null

router = APIRouter(prefix="/customers/{customer_id}/documents", tags=["documents"])

ADMIN, MANAGER, SERVICE = Role.ADMIN, Role.MANAGER, Role.SERVICE
HOLDERS = Scope(ADMIN, MANAGER, SERVICE, customer_self=True)
REVIEWERS = Scope(ADMIN, MANAGER)

Holder = Annotated[RequestContext, Depends(HOLDERS, scope="function")]
Reviewer = Annotated[RequestContext, Depends(REVIEWERS, scope="function")]
# The customer is known (else 404) before the multipart form is validated.
Uploader = Annotated[RequestContext, Depends(known_customer(HOLDERS), scope="function")]


@router.get("", response_model=DocumentPage, summary="List a customer's documents")
async def list_documents(
    customer_id: uuid.UUID,
    ctx: Holder,
    window: Paging,
) -> DocumentPage:
    return await DocumentService(ctx).list(customer_id, window)


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
    responses={
        201: success_headers("Location"),
        409: {"description": "This document belongs to another customer of the tenant"},
    },
)
async def add_document(
    customer_id: uuid.UUID,
    request: Request,
    ctx: Uploader,
    type: Annotated[DocumentType, Form()],
    number: Annotated[
        str,
        Form(
            min_length=1,
            max_length=100,
            description="Letters and digits; spaces, '-', '.' and '/' are ignored. Length "
            "after that: PASSPORT 5-20, NATIONAL_ID and DRIVERS_LICENSE 4-32, others 2-64",
            json_schema_extra={"pattern": r"^[\s./-]*[A-Za-z0-9][A-Za-z0-9\s./-]*$"},
        ),
    ],
    issuing_country: Annotated[
        str,
        Form(
            min_length=2,
            max_length=2,
            description="ISO 3166-1 alpha-2 country code (an assigned one)",
            json_schema_extra={"pattern": COUNTRY_PATTERN},
        ),
    ],
    file: Annotated[UploadFile, File(description="PDF, JPEG or PNG, at most 10 MiB")],
    # a form field is left out, never null
    expires_on: Annotated[date | None, Form(json_schema_extra=not_null)] = None,
) -> Response:
    fields = NewDocument(
        type=type, number=number, issuing_country=issuing_country, expires_on=expires_on
    )
    document = await DocumentService(ctx).add(customer_id, fields, file)
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
    ctx: Holder,
) -> DocumentRead:
    return await DocumentService(ctx).get(customer_id, document_id)


@router.get(
    "/{document_id}/file",
    summary="Download a document's file",
    response_class=StreamingResponse,
    responses={200: {"content": {m: {} for m in EXTENSIONS}, "description": "The file"}},
)
async def download_document(
    customer_id: uuid.UUID,
    document_id: uuid.UUID,
    ctx: Holder,
) -> StreamingResponse:
    document, chunks = await DocumentService(ctx).open_file(customer_id, document_id)
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
    ctx: Holder,
) -> Response:
    await DocumentService(ctx).remove(customer_id, document_id)
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
    ctx: Reviewer,
) -> DocumentRead:
    return await DocumentService(ctx).review(customer_id, document_id, DocumentStatus.VERIFIED)


@router.post(
    "/{document_id}/reject",
    response_model=DocumentRead,
    summary="Mark a pending document rejected",
    responses={409: {"description": "The document was already verified or rejected"}},
)
async def reject_document(
    customer_id: uuid.UUID,
    document_id: uuid.UUID,
    ctx: Reviewer,
    body: RejectRequest | None = None,
) -> DocumentRead:
    reason = body.reason if body else None
    return await DocumentService(ctx).review(
        customer_id, document_id, DocumentStatus.REJECTED, reason
    )

"""HTTP routes of staff notes (API.md "Profile data": admin, manager, agent — never the
customer; delete: admin, manager, or the note's author, checked in the service)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from patron.auth.principal import Role
from patron.customers.dependencies import known_customer
from patron.http.paging import Paging
from patron.http.scope import RequestContext, Scope
from patron.notes.schemas import NoteCreate, NotePage, NoteRead
from patron.notes.service import NoteService

router = APIRouter(prefix="/customers/{customer_id}/notes", tags=["notes"])

STAFF = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT)
Ctx = Annotated[RequestContext, Depends(STAFF)]
KnownCustomer = Annotated[RequestContext, Depends(known_customer(STAFF))]


@router.get("", response_model=NotePage, summary="List a customer's notes, newest first")
async def list_notes(customer_id: uuid.UUID, ctx: Ctx, window: Paging) -> NotePage:
    return await NoteService(ctx).list(customer_id, window)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NoteRead, summary="Add a note")
async def add_note(customer_id: uuid.UUID, body: NoteCreate, ctx: KnownCustomer) -> NoteRead:
    return await NoteService(ctx).add(customer_id, body.note)


@router.delete(
    "/{note_id}",
    status_code=204,
    summary="Delete a note",
    description="Admins and managers may delete any note; an agent only their own (else 403).",
)
async def delete_note(customer_id: uuid.UUID, note_id: uuid.UUID, ctx: Ctx) -> Response:
    await NoteService(ctx).remove(customer_id, note_id)
    return Response(status_code=204)

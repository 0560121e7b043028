"""HTTP routes of staff notes (API.md "Profile data": admin, manager, agent — never the
customer; delete: admin, manager, or the note's author, checked in the service)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from patron.auth.principal import Role
from patron.customers.dependencies import known_customer as customer_dependency
from patron.customers.service import CustomerService
from patron.http.scope import RequestContext, Scope
from patron.kit.keyset import Window
from patron.kit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from patron.notes.schemas import NoteCreate, NotePage, NoteRead
from patron.notes.service import NoteService

router = APIRouter(prefix="/customers/{customer_id}/notes", tags=["notes"])

STAFF = Scope(Role.ADMIN, Role.MANAGER, Role.AGENT)
Ctx = Annotated[RequestContext, Depends(STAFF, scope="function")]


def customers(ctx: RequestContext) -> CustomerService:
    return CustomerService(ctx)


def service(ctx: RequestContext) -> NoteService:
    return NoteService(
        session=ctx.session, tenant=ctx.tenant, actor=ctx.principal, customers=customers(ctx)
    )


known_customer = customer_dependency(STAFF)


@router.get("", response_model=NotePage, summary="List a customer's notes, newest first")
async def list_notes(
    customer_id: uuid.UUID,
    ctx: Ctx,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> NotePage:
    return await service(ctx).list_notes(customer_id, Window(page, page_size, cursor))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NoteRead, summary="Add a note")
async def add_note(
    customer_id: uuid.UUID,
    body: NoteCreate,
    ctx: Annotated[RequestContext, Depends(known_customer, scope="function")],
) -> NoteRead:
    return await service(ctx).add(customer_id, body.note)


@router.delete(
    "/{note_id}",
    status_code=204,
    summary="Delete a note",
    description="Admins and managers may delete any note; an agent only their own (else 403).",
)
async def delete_note(customer_id: uuid.UUID, note_id: uuid.UUID, ctx: Ctx) -> Response:
    await service(ctx).remove(customer_id, note_id)
    return Response(status_code=204)

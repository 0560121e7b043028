"""HTTP routes of the customer avatar (API.md "Customers": ``POST /customers/{id}/avatar``).

``avatar_url`` is the authenticated ``GET /api/v1/customers/{id}/avatar`` (same roles as
reading the customer), not a public bucket URL: avatars are personal data.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, File, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from patron.auth.principal import Role
from patron.avatars.service import AvatarService
from patron.customers.service import CustomerService
from patron.http.scope import RequestContext, Scope
from patron.storage import delete_quietly

router = APIRouter(prefix="/customers/{customer_id}/avatar", tags=["customers"])

ADMIN, MANAGER, AGENT, SERVICE = Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE
UPLOADERS = Scope(ADMIN, MANAGER, customer_self=True)
READERS = Scope(ADMIN, MANAGER, AGENT, SERVICE, customer_self=True)


class AvatarResult(BaseModel):
    avatar_url: str


def service(ctx: RequestContext) -> AvatarService:
    return AvatarService(
        session=ctx.session,
        tenant=ctx.tenant,
        settings=ctx.app.settings,
        keyring=ctx.app.keyring,
        actor=ctx.principal,
        storage=ctx.app.storage,
        customers=CustomerService(ctx),
    )


async def live_customer(
    customer_id: uuid.UUID, ctx: Annotated[RequestContext, Depends(UPLOADERS, scope="function")]
) -> RequestContext:
    """The context once ``customer_id`` is a live customer (else 404), checked before the
    multipart form is validated."""
    await CustomerService(ctx).require(customer_id)
    return ctx


@router.post(
    "",
    response_model=AvatarResult,
    summary="Upload the customer's avatar",
    description=(
        "Multipart field `file`: a JPEG or PNG (judged by decoding it), at most 1 MiB. "
        'It is re-encoded without metadata (EXIF, GPS). Answers `{"avatar_url": ...}`.'
    ),
)
async def upload_avatar(
    customer_id: uuid.UUID,
    background: BackgroundTasks,
    ctx: Annotated[RequestContext, Depends(live_customer)],
    file: Annotated[UploadFile, File(description="JPEG or PNG, at most 1 MiB")],
) -> AvatarResult:
    url, previous = await service(ctx).replace(customer_id, file)
    if previous:
        # After the response, so after the commit.
        background.add_task(delete_quietly, ctx.app.storage, previous)
    return AvatarResult(avatar_url=url)


@router.get(
    "",
    summary="Download the customer's avatar",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "Image"}},
)
async def get_avatar(
    customer_id: uuid.UUID,
    ctx: Annotated[RequestContext, Depends(READERS, scope="function")],
) -> StreamingResponse:
    content_type, chunks = await service(ctx).open(customer_id)
    return StreamingResponse(
        chunks,
        media_type=content_type,
        headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
    )

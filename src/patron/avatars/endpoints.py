"""HTTP routes of the customer avatar (API.md "Customers": ``POST /customers/{id}/avatar``).

``avatar_url`` is the authenticated ``GET /api/v1/customers/{id}/avatar`` (same roles as
reading the customer), not a public bucket URL: avatars are personal data.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from patron.auth.principal import Role
from patron.avatars.service import AvatarService
from patron.customers.dependencies import known_customer
from patron.http.scope import RequestContext, Scope

router = APIRouter(prefix="/customers/{customer_id}/avatar", tags=["customers"])

ADMIN, MANAGER, AGENT, SERVICE = Role.ADMIN, Role.MANAGER, Role.AGENT, Role.SERVICE
UPLOADERS = Scope(ADMIN, MANAGER, customer_self=True)
READERS = Scope(ADMIN, MANAGER, AGENT, SERVICE, customer_self=True)


class AvatarResult(BaseModel):
    avatar_url: str


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
    # The customer is known (else 404) before the multipart form is validated.
    ctx: Annotated[RequestContext, Depends(known_customer(UPLOADERS), scope="function")],
    file: Annotated[UploadFile, File(description="JPEG or PNG, at most 1 MiB")],
) -> AvatarResult:
    return AvatarResult(avatar_url=await AvatarService(ctx).replace(customer_id, file))


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
    content_type, chunks = await AvatarService(ctx).open(customer_id)
    return StreamingResponse(
        chunks,
        media_type=content_type,
        headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
    )

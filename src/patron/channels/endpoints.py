"""HTTP routes of Meta channels (API.md "Channels": admin only).

The page access token and app secret are write-only: no answer carries them. A create's
answer holds no secret, so its ``Idempotency-Key`` replay is stored as usual.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from patron.auth.principal import Role
from patron.channels.schemas import ChannelCreate, ChannelPage, ChannelRead
from patron.channels.service import ChannelService
from patron.http.openapi import success_headers
from patron.http.paging import Paging
from patron.http.scope import RequestContext, Scope

router = APIRouter(prefix="/channels", tags=["channels"])

ADMIN = Scope(Role.ADMIN)
Ctx = Annotated[RequestContext, Depends(ADMIN, scope="function")]


@router.get("", operation_id="listChannels", response_model=ChannelPage, summary="List channels")
async def list_channels(ctx: Ctx, window: Paging) -> ChannelPage:
    return await ChannelService(ctx).list_channels(window)


@router.post(
    "",
    operation_id="createChannel",
    status_code=status.HTTP_201_CREATED,
    response_model=ChannelRead,
    summary="Connect a Facebook page or Instagram account",
    description=(
        "`page_id` is the Facebook page id, or the Instagram business account id for "
        "`platform: instagram`; `messenger` is accepted for `facebook`. `access_token` (the "
        "page access token) and `app_secret` (default: `META_APP_SECRET`) are write-only. "
        "A page belongs to at most one channel of any tenant: 409 otherwise."
    ),
    responses={
        201: success_headers("Location"),
        409: {"description": "This page is already connected to a channel (of any tenant)"},
    },
)
async def create_channel(body: ChannelCreate, ctx: Ctx, response: Response) -> ChannelRead:
    created = await ChannelService(ctx).create(body)
    response.headers["Location"] = f"/api/v1/channels/{created.id}"
    return created


@router.get(
    "/{channel_id}",
    operation_id="getChannel",
    response_model=ChannelRead,
    summary="Read a channel",
)
async def get_channel(channel_id: uuid.UUID, ctx: Ctx) -> ChannelRead:
    return await ChannelService(ctx).get(channel_id)


@router.delete(
    "/{channel_id}",
    operation_id="deleteChannel",
    status_code=204,
    summary="Delete a channel",
    description="A hard delete: the token and app secret are gone, and the page may be "
    "connected again.",
)
async def delete_channel(channel_id: uuid.UUID, ctx: Ctx) -> Response:
    await ChannelService(ctx).delete(channel_id)
    return Response(status_code=204)

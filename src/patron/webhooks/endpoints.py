"""HTTP routes of outgoing webhook endpoints (API.md "webhooks": admin only).

``POST`` and ``POST .../rotate-secret`` answer with a signing ``secret``, the only time it
is shown. Because of that, their ``Idempotency-Key`` is released instead of having the
answer stored for replay: a stored answer would keep the secret in clear in
``idempotency_keys`` (docs/decisions/0008-webhook-deliveries.md).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response, status

from patron.auth.principal import Role
from patron.http.idempotency import finish_idempotent_request
from patron.http.openapi import success_headers
from patron.http.paging import Paging
from patron.http.scope import RequestContext, Scope
from patron.idempotency.service import PendingKey
from patron.webhooks.schemas import (
    WebhookDeliveryPage,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointPage,
    WebhookEndpointRead,
    WebhookEndpointSecretRotated,
    WebhookEndpointUpdate,
    WebhookSecretRotate,
)
from patron.webhooks.service import WebhookEndpointService

router = APIRouter(prefix="/webhook-endpoints", tags=["webhooks"])

ADMIN = Scope(Role.ADMIN)
Ctx = Annotated[RequestContext, Depends(ADMIN, scope="function")]


async def _release_idempotency_key(request: Request, ctx: RequestContext) -> None:
    """Keep the middleware from storing this response (it holds the secret) and free the
    key at once, so a retry is not answered 409 while the claim would last."""
    pending = getattr(request.state, "idempotency", None)
    if isinstance(pending, PendingKey):
        request.state.idempotency = None
        await finish_idempotent_request(ctx.app.db, pending, 500, [], b"")


@router.get(
    "",
    operation_id="listWebhookEndpoints",
    response_model=WebhookEndpointPage,
    summary="List webhook endpoints",
)
async def list_endpoints(ctx: Ctx, window: Paging) -> WebhookEndpointPage:
    return await WebhookEndpointService(ctx).list_endpoints(window)


@router.post(
    "",
    operation_id="createWebhookEndpoint",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookEndpointCreated,
    summary="Register a webhook endpoint",
    description=(
        "The answer carries the signing `secret`, shown this once. The URL must be https "
        "and resolve only to public addresses (422 naming `url` otherwise); event types "
        "must be known (`*` or an empty list: all). An `Idempotency-Key` is accepted but "
        "its answer is not stored for replay (it holds the secret)."
    ),
    responses={201: success_headers("Location")},
)
async def create_endpoint(
    body: WebhookEndpointCreate, ctx: Ctx, request: Request, response: Response
) -> WebhookEndpointCreated:
    await _release_idempotency_key(request, ctx)
    created = await WebhookEndpointService(ctx).create(body)
    response.headers["Location"] = f"/api/v1/webhook-endpoints/{created.id}"
    response.headers["Cache-Control"] = "no-store"
    return created


@router.get(
    "/{endpoint_id}",
    operation_id="getWebhookEndpoint",
    response_model=WebhookEndpointRead,
    summary="Read a webhook endpoint",
)
async def get_endpoint(endpoint_id: uuid.UUID, ctx: Ctx) -> WebhookEndpointRead:
    return await WebhookEndpointService(ctx).get(endpoint_id)


@router.patch(
    "/{endpoint_id}",
    operation_id="updateWebhookEndpoint",
    response_model=WebhookEndpointRead,
    summary="Change, re-enable or disable a webhook endpoint",
    description='`{"enabled": true}` re-enables a disabled endpoint and clears its failure '
    "streak; deliveries failed while it was disabled are not resent.",
)
async def update_endpoint(
    endpoint_id: uuid.UUID, body: WebhookEndpointUpdate, ctx: Ctx
) -> WebhookEndpointRead:
    return await WebhookEndpointService(ctx).update(endpoint_id, body)


@router.delete(
    "/{endpoint_id}",
    operation_id="deleteWebhookEndpoint",
    status_code=204,
    summary="Delete a webhook endpoint",
)
async def delete_endpoint(endpoint_id: uuid.UUID, ctx: Ctx) -> Response:
    await WebhookEndpointService(ctx).delete(endpoint_id)
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=WebhookEndpointSecretRotated,
    summary="Rotate a webhook endpoint's signing secret",
    description=(
        "The answer carries the new `secret`, shown this once. The replaced secret keeps "
        "signing deliveries beside the new one until `previous_secret_expires_at` (default "
        "24 h, at most 7 days ahead; a time not in the future drops it at once). A secret "
        "replaced by an earlier rotation stops at once."
    ),
)
async def rotate_secret(
    endpoint_id: uuid.UUID,
    ctx: Ctx,
    request: Request,
    response: Response,
    body: Annotated[WebhookSecretRotate | None, Body()] = None,
) -> WebhookEndpointSecretRotated:
    await _release_idempotency_key(request, ctx)
    rotated = await WebhookEndpointService(ctx).rotate_secret(
        endpoint_id, body or WebhookSecretRotate()
    )
    response.headers["Cache-Control"] = "no-store"
    return rotated


@router.get(
    "/{endpoint_id}/deliveries",
    operation_id="listWebhookDeliveries",
    response_model=WebhookDeliveryPage,
    summary="An endpoint's deliveries and their attempts, newest first",
)
async def list_deliveries(endpoint_id: uuid.UUID, ctx: Ctx, window: Paging) -> WebhookDeliveryPage:
    return await WebhookEndpointService(ctx).list_deliveries(endpoint_id, window)

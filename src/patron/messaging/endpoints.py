"""``GET, POST /webhooks/meta``: Meta's webhook URL (API.md "Webhooks"). Not under
``/api/v1`` and without API-key or JWT authentication: the GET is checked against
``META_VERIFY_TOKEN``, the POST by its ``X-Hub-Signature-256`` (:mod:`patron.messaging.service`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import PlainTextResponse

from patron.context import AppContext
from patron.messaging.service import MetaWebhookReceiver, check_verification

router = APIRouter(prefix="/webhooks/meta", tags=["Meta webhooks"])

# Paths served here, which the route-table tests accept as deliberately unauthenticated.
PATHS = frozenset({"/webhooks/meta"})


@router.get(
    "",
    summary="Meta's subscribe handshake",
    response_class=PlainTextResponse,
    responses={403: {"description": "wrong mode or verify token"}},
)
async def verify_subscription(
    request: Request,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    verify_token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=1000)] = None,
) -> PlainTextResponse:
    """200 with ``hub.challenge`` as the whole ``text/plain`` body when ``hub.mode`` is
    ``subscribe`` and ``hub.verify_token`` equals ``META_VERIFY_TOKEN``; 403 otherwise."""
    ctx: AppContext = request.app.state.ctx
    answer = check_verification(ctx.settings.meta_verify_token, mode, verify_token, challenge)
    return PlainTextResponse(answer)


@router.post(
    "",
    summary="Meta's messaging notifications (signed)",
    responses={
        400: {"description": "signed, but not a notification"},
        401: {"description": "X-Hub-Signature-256 missing or wrong; nothing processed"},
    },
)
async def receive_notification(
    request: Request,
    x_hub_signature_256: Annotated[str | None, Header(alias="X-Hub-Signature-256")] = None,
) -> dict[str, Any]:
    """Check the signature over the raw body, then record each messaging event of the
    known pages; pages no channel knows are acknowledged. The body of the 200 counts
    what was done (Meta reads only the status)."""
    ctx: AppContext = request.app.state.ctx
    body = await request.body()
    outcome = await MetaWebhookReceiver(ctx).receive(body, x_hub_signature_256)
    return {
        "recorded": outcome.counts.recorded,
        "interactions": outcome.counts.interactions,
        "acknowledged": outcome.counts.acknowledged,
        "unknown_pages": len(outcome.unknown_pages),
    }

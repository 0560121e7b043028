"""Errors of the webhook-endpoint API, rendered by the one problem+json handler."""

from __future__ import annotations

import uuid

from patron.errors import NotFound


class WebhookEndpointNotFound(NotFound):
    """404: no webhook endpoint with this id in the tenant (also another tenant's)."""

    def __init__(self, endpoint_id: uuid.UUID) -> None:
        super().__init__("webhook endpoint not found", webhook_endpoint_id=str(endpoint_id))

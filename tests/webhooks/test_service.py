"""Webhook-endpoint use cases called without HTTP (a ServiceContext built here): each owns
its unit of work; disabling records its event; errors render as before."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from patron.context import AppContext
from patron.webhooks.errors import WebhookEndpointNotFound
from patron.webhooks.schemas import WebhookEndpointCreate, WebhookEndpointUpdate
from patron.webhooks.service import WebhookEndpointService
from tests.conftest import outbox_rows
from tests.contexts import staff_context
from tests.problems import problem_of


async def test_create_disable_delete_outside_http(
    app_ctx: AppContext, tenant: str, db: asyncpg.Pool, allow_private: None
) -> None:
    endpoints = WebhookEndpointService(staff_context(app_ctx, tenant))
    created = await endpoints.create(
        WebhookEndpointCreate(url="https://127.0.0.1:9/hooks", event_types=["*"])
    )
    assert created.secret
    disabled = await endpoints.update(created.id, WebhookEndpointUpdate(enabled=False))
    assert disabled.status == "disabled"
    status = await db.fetchval("SELECT status FROM webhook_endpoints WHERE id = $1", created.id)
    assert status == "disabled"
    [event] = await outbox_rows(db, tenant, "webhook_endpoint.disabled")
    assert (event["subject"], event["data"]["reason"]) == (str(created.id), "disabled by API")

    await endpoints.delete(created.id)
    assert (
        await db.fetchval("SELECT count(*) FROM webhook_endpoints WHERE id = $1", created.id) == 0
    )
    with pytest.raises(WebhookEndpointNotFound):
        await endpoints.get(created.id)


def test_not_found_renders_the_problem_body_of_before() -> None:
    endpoint_id = uuid.UUID(int=5)
    assert problem_of(WebhookEndpointNotFound(endpoint_id)) == {
        "type": "/problems/not-found",
        "status": 404,
        "detail": "webhook endpoint not found",
        "webhook_endpoint_id": str(endpoint_id),
    }

"""Fixtures for webhook tests: a real receiver, endpoints created through the API, and
dispatchers with delays shrunk to milliseconds."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from patron.config import Settings
from patron.context import AppContext
from patron.db.engine import create_system_engine
from patron.webhooks.dispatcher import WebhookDispatcher
from tests.conftest import make_settings
from tests.webhooks.receiver import Receiver

FAST = {
    "webhooks_allow_private_targets": True,
    "webhooks_retry_base_seconds": 0.02,
    "webhooks_retry_max_seconds": 0.1,
    "webhooks_poll_interval_seconds": 0.02,
    "webhooks_request_timeout_seconds": 3.0,
    "webhooks_dns_timeout_seconds": 1.0,
    "webhooks_batch_size": 500,
    "webhooks_disable_after_failures": 1000,
    "webhooks_disable_after_seconds": 0.0,
}


def dispatch_settings(**overrides: Any) -> Settings:
    return make_settings(**{**FAST, **overrides})


@pytest.fixture
def allow_private(app_ctx: AppContext) -> Iterator[None]:
    """The API under test runs with ``WEBHOOKS_ALLOW_PRIVATE_TARGETS=true`` (the development
    setting), so an endpoint may point at the local receiver."""
    settings = app_ctx.settings
    before = settings.webhooks_allow_private_targets
    settings.webhooks_allow_private_targets = True
    yield
    settings.webhooks_allow_private_targets = before


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
async def foreign_endpoints_disabled(db: asyncpg.Pool) -> None:
    """The dispatcher works across tenants, so endpoints other test files left in this
    worker's database (the contract test may create some with public address URLs) are
    switched off first: a test's dispatcher then only calls its own receivers."""
    await db.execute("UPDATE webhook_endpoints SET status = 'disabled' WHERE status = 'enabled'")


DispatcherFactory = Callable[..., WebhookDispatcher]


@pytest.fixture
async def make_dispatcher(
    app_ctx: AppContext, database_url: str, foreign_endpoints_disabled: None
) -> AsyncIterator[DispatcherFactory]:
    """``make_dispatcher(tls_verify=..., **setting_overrides)`` → a dispatcher on its own ``patron_system``
    engine, closed after the test."""
    made: list[WebhookDispatcher] = []

    def make(*, tls_verify: ssl.SSLContext | bool = True, **overrides: Any) -> WebhookDispatcher:
        settings = dispatch_settings(**overrides)
        dispatcher = WebhookDispatcher(
            settings,
            create_system_engine(settings, database_url),
            app_ctx.keyring,
            tls_verify=tls_verify,
        )
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        await dispatcher.aclose()


EndpointFactory = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
async def create_endpoint(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Pool,
    allow_private: None,
    foreign_endpoints_disabled: None,
) -> AsyncIterator[EndpointFactory]:
    """``await create_endpoint(receiver, event_types=[...])`` → the created endpoint (with
    ``secret``), whose secret the receiver then verifies with. Endpoints are deleted after
    the test so later tests' dispatchers do not call closed receivers."""
    created: list[str] = []

    async def make(receiver: Receiver, **fields: Any) -> dict[str, Any]:
        body = {"url": f"{receiver.url}/hooks", **fields}
        response = await client.post("/api/v1/webhook-endpoints", json=body, headers=admin)
        assert response.status_code == 201, response.text
        endpoint: dict[str, Any] = response.json()
        receiver.secret = endpoint["secret"]
        created.append(endpoint["id"])
        return endpoint

    yield make
    await db.execute(
        "DELETE FROM webhook_endpoints WHERE id = ANY($1::uuid[])", [uuid.UUID(i) for i in created]
    )


async def drive(
    dispatcher: WebhookDispatcher,
    until: Callable[[], Awaitable[bool]],
    within: float = 15.0,
) -> None:
    """Run dispatcher rounds until ``until()`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await until():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        if await dispatcher.run_once() == 0:
            await asyncio.sleep(0.02)


async def wait_for(until: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Poll ``until()`` (dispatchers run elsewhere) until it holds or ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while not await until():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)

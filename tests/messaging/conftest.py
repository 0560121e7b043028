"""The Meta webhook tests' app (``META_VERIFY_TOKEN`` and ``META_APP_SECRET`` set), the
signed fixtures (copied from specs/meta/examples) and channels for their pages."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from patron.app import create_app
from patron.context import AppContext, build_context
from patron.messaging.signature import sign
from tests.conftest import make_settings
from tests.jwks_server import Issuer

FIXTURES = Path(__file__).parent / "fixtures"
VECTORS: dict[str, Any] = json.loads((FIXTURES / "webhook-signature-vectors.json").read_text())
APP_SECRET: str = VECTORS["app_secret"]
VERIFY_TOKEN = "my-verify-token"
URL = "/webhooks/meta"

# The fixtures' pages and app (Messenger page, Instagram professional account).
PAGE_ID = "104857600000001"
IG_ACCOUNT_ID = "17841400000000001"
APP_ID = "1517776481860111"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def signed(payload: dict[str, Any] | bytes, secret: str = APP_SECRET) -> tuple[bytes, str]:
    """(raw body, ``X-Hub-Signature-256``) of ``payload`` (compact JSON, non-ASCII escaped
    as Meta sends it) under ``secret``."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return raw, sign(raw, secret)


@pytest.fixture(scope="session")
async def messaging_ctx(issuer: Issuer, database_url: str) -> AsyncIterator[AppContext]:
    settings = make_settings(
        jwks_url=issuer.url, meta_verify_token=VERIFY_TOKEN, meta_app_secret=APP_SECRET
    )
    ctx = build_context(settings, database_url)
    yield ctx
    await ctx.close()


@pytest.fixture(scope="session")
def app(messaging_ctx: AppContext) -> Any:
    """Overrides the suite's app for these tests: the same app with Meta's settings."""
    return create_app(messaging_ctx.settings, context=messaging_ctx)


ChannelFactory = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
async def connect(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> AsyncIterator[ChannelFactory]:
    """``await connect(platform, page_id, app_secret=None)`` → a channel of the test's
    tenant for that page; deleted at the end (a page belongs to one tenant at a time)."""
    made: list[str] = []

    async def make(platform: str, page_id: str, app_secret: str | None = None) -> dict[str, Any]:
        body = {"platform": platform, "app_id": APP_ID, "page_id": page_id}
        body["access_token"] = "EAAG-test-page-token"
        if app_secret is not None:
            body["app_secret"] = app_secret
        response = await client.post("/api/v1/channels", json=body, headers=admin)
        assert response.status_code == 201, response.text
        channel: dict[str, Any] = response.json()
        made.append(channel["id"])
        return channel

    yield make
    for channel_id in made:
        response = await client.delete(f"/api/v1/channels/{channel_id}", headers=admin)
        assert response.status_code == 204, response.text

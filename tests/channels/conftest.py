"""Helpers of the channel tests: unique Meta ids and a channel created through the API."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

URL = "/api/v1/channels"


def meta_id() -> str:
    """A numeric id no other test uses (pages are unique across every tenant)."""
    return "9" + "".join(secrets.choice("0123456789") for _ in range(15))


def channel_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "platform": "facebook",
        "app_id": meta_id(),
        "page_id": meta_id(),
        "access_token": f"EAAG-page-token-{secrets.token_hex(8)}",
    }
    body.update(overrides)
    return body


ChannelFactory = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def create_channel(client: httpx.AsyncClient) -> ChannelFactory:
    """``await create_channel(headers, **fields)`` → the created channel's body (201)."""

    async def make(headers: dict[str, str], **fields: Any) -> dict[str, Any]:
        response = await client.post(URL, json=channel_body(**fields), headers=headers)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    return make

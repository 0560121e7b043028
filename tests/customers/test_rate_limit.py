"""PATCH rate limit (CUSTOMER_PATCH_RATE), per principal and customer: in memory and in Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from patron.app import create_app
from patron.auth.principal import Role
from patron.context import AppContext
from patron.kit.ratelimit import RateLimiter
from tests import services
from tests.conftest import ApiKeyFactory, create_customer

BASE = "/api/v1/customers"


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = services.redis_url()
    if url is None:
        pytest.skip(
            "Redis is not reachable on 127.0.0.1:6379 (set PATRON_TEST_REDIS_URL); CI requires it"
        )
    return url


def _limited_app(app_ctx: AppContext, settings: Any, redis: str | None) -> Any:
    limited = settings.model_copy(update={"customer_patch_rate": "2/minute", "redis_url": redis})
    ctx = AppContext(
        **{**app_ctx.__dict__, "settings": limited, "rate_limiter": RateLimiter(redis)}
    )
    return create_app(limited, context=ctx)


async def _exercise(app: Any, headers: dict[str, str], other_headers: dict[str, str]) -> str:
    """Run the limit scenario; returns the id of the customer whose PATCH budget is spent."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        customer = await create_customer(c, headers, first_name="A")
        second = await create_customer(c, headers, first_name="B")
        url = f"{BASE}/{customer['id']}"
        codes = [
            (await c.patch(url, json={"first_name": f"N{i}"}, headers=headers)).status_code
            for i in range(3)
        ]
        assert codes == [200, 200, 429]
        limited = await c.patch(url, json={"first_name": "Z"}, headers=headers)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        retry_after = int(limited.headers["retry-after"])
        assert 0 < retry_after <= 60  # seconds until the one-minute window frees a slot
        # the rejected PATCH changed nothing
        assert (await c.get(url, headers=headers)).json()["first_name"] == "N1"
        # the limit is per principal and per customer
        assert (
            await c.patch(f"{BASE}/{second['id']}", json={"first_name": "C"}, headers=headers)
        ).status_code == 200
        assert (
            await c.patch(url, json={"first_name": "Other"}, headers=other_headers)
        ).status_code == 200
    return str(customer["id"])


async def test_patch_rate_limit_in_memory(
    app_ctx: AppContext, settings: Any, api_key_headers: ApiKeyFactory, tenant: str
) -> None:
    app = _limited_app(app_ctx, settings, None)
    await _exercise(
        app, await api_key_headers(Role.ADMIN, tenant), await api_key_headers(Role.MANAGER, tenant)
    )


async def test_patch_rate_limit_in_redis_is_shared_between_processes(
    app_ctx: AppContext, settings: Any, api_key_headers: ApiKeyFactory, tenant: str, redis_url: str
) -> None:
    import redis.asyncio as aioredis

    headers = await api_key_headers(Role.ADMIN, tenant)
    spent = await _exercise(
        _limited_app(app_ctx, settings, redis_url),
        headers,
        await api_key_headers(Role.MANAGER, tenant),
    )
    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match="patron:ratelimit*")]
        assert keys, "counters must live in Redis"
    finally:
        await client.aclose()
    # a second app instance (another replica) sees the same counters
    replica = _limited_app(app_ctx, settings, redis_url)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=replica), base_url="http://t"
    ) as c:
        response = await c.patch(f"{BASE}/{spent}", json={"first_name": "again"}, headers=headers)
        assert response.status_code == 429

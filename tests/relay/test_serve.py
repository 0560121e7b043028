"""``patron serve``: one process runs HTTP and, beside it, the relay and the consumers."""

from __future__ import annotations

import uuid

import httpx

from patron.app import create_app
from tests.conftest import ApiKeyFactory, make_settings
from tests.relay.conftest import Consumer, wait_until


async def test_serve_publishes_what_its_own_api_writes(
    database_url: str,
    rabbitmq_url: str,
    exchange: str,
    consumer: Consumer,
    api_key_headers: ApiKeyFactory,
    tenant: str,
) -> None:
    unique = uuid.uuid4().hex
    settings = make_settings(
        rabbitmq_url=rabbitmq_url,
        rabbitmq_exchange=exchange,
        orders_consumer_exchange=f"test.commerce.{unique}",
        orders_consumer_queue=f"test.orders-in.{unique}",
    )
    app = create_app(settings, database_url, background=True)
    headers = await api_key_headers("admin", tenant)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            created = await client.post(
                "/api/v1/customers", json={"first_name": "Grace"}, headers=headers
            )
            assert created.status_code == 201, created.text

            async def delivered() -> bool:
                return any(m.body["subject"] == created.json()["id"] for m in consumer.messages)

            await wait_until(delivered, what="customer.created published by serve's relay")
    got = consumer.of_tenant(tenant)
    assert [(m.routing_key, m.body["subject"]) for m in got] == [
        ("v1.customer.created", created.json()["id"])
    ]

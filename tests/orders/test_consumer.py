"""The order and appointment event consumer against the real RabbitMQ and PostgreSQL
(docs/events-in.md). Every test declares its own exchange and queues (uuid names)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from patron.context import AppContext
from patron.orders.consumer import (
    ConsumerTopology,
    OrderEventConsumer,
    build_consumer_services,
    declare_topology,
)
from patron.orders.inbox import InboxProcessor
from tests.conftest import create_customer, make_settings, outbox_rows
from tests.orders.waiting import TIMEOUT, eventually


class Broker:
    """A test's view of its own topology: publish events, read the dead-letter queue."""

    def __init__(self, channel: AbstractChannel, topology: ConsumerTopology) -> None:
        self.channel = channel
        self.topology = topology

    async def publish(self, event: dict[str, Any] | bytes, routing_key: str) -> None:
        exchange = await self.channel.get_exchange(self.topology.exchange)
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        message_id = event.get("id") if isinstance(event, dict) else None
        await exchange.publish(
            aio_pika.Message(
                body,
                content_type="application/cloudevents+json",
                message_id=message_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=routing_key,
        )

    async def dead_letters(self) -> list[AbstractIncomingMessage]:
        queue = await self.channel.get_queue(self.topology.dead_letter_queue)
        out = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            out.append(message)
        return out


@pytest.fixture
async def broker(
    rabbitmq_url: str, app_ctx: AppContext, request: pytest.FixtureRequest
) -> AsyncIterator[Broker]:
    """A running consumer on fresh queues (3 attempts, 50 ms retry delay unless the test
    parametrizes ``broker`` indirectly with other limits)."""
    name = f"test.orders-in.{uuid.uuid4().hex[:10]}"
    limits: dict[str, int] = {"max_attempts": 3, "retry_delay_ms": 50}
    limits.update(getattr(request, "param", {}))
    topology = ConsumerTopology(
        exchange=f"{name}.exchange",
        queue=name,
        routing_keys=("v1.order.*", "v1.appointment.*"),
        prefetch=8,
        **limits,
    )
    connection = await aio_pika.connect(rabbitmq_url)
    channel = await connection.channel()
    await declare_topology(channel, topology)
    consumer = OrderEventConsumer(rabbitmq_url, topology, InboxProcessor(app_ctx))
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.wait_for(consumer.consuming.wait(), TIMEOUT)
    try:
        yield Broker(channel, topology)
    finally:
        stop.set()
        await asyncio.wait_for(task, TIMEOUT)
        for queue in (topology.queue, topology.retry_queue, topology.dead_letter_queue):
            await channel.queue_delete(queue)
        for exchange in (topology.exchange, topology.dead_letter_exchange):
            await channel.exchange_delete(exchange)
        await connection.close()


def order_event(
    tenant: str, type_: str, customer: dict[str, Any], order: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": extra.pop("id", str(uuid.uuid4())),
        "source": "/orders-service",
        "type": type_,
        "tenantid": tenant,
        "time": "2026-11-22T05:00:00Z",
        "datacontenttype": "application/json",
        "data": {"customer": customer, "order": order},
        **extra,
    }


async def _order(db: asyncpg.Pool, tenant: str, order_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await db.fetchrow(
        "SELECT * FROM customer_orders WHERE tenant_id = $1 AND order_id = $2", tenant, order_id
    )
    return row


async def test_orders_by_email_and_status_events_update_history_and_stats(
    broker: Broker,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    ada = await create_customer(client, admin, first_name="Ada", email="Ada@Example.com")
    created = order_event(
        tenant,
        "order.created",
        {"email": "ada@example.COM"},
        {
            "order_id": "O-1",
            "total": "42.50",
            "currency": "USD",
            "placed_at": "2026-11-01T12:00:00Z",
        },
        traceid="trace-order-1",
    )
    await broker.publish(created, "v1.order.created")
    row = await eventually(lambda: _order(db, tenant, "O-1"))
    assert (str(row["customer_id"]), row["status"], row["total"]) == (ada["id"], "PLACED", 42.5)
    paid = order_event(tenant, "order.paid", {"customer_id": ada["id"]}, {"order_id": "O-1"})
    await broker.publish(paid, "v1.order.paid")

    async def is_paid() -> bool:
        found = await _order(db, tenant, "O-1")
        return found is not None and found["status"] == "PAID"

    await eventually(is_paid)
    stats = (await client.get(f"/api/v1/customers/{ada['id']}/stats", headers=admin)).json()
    assert (stats["total_orders"], stats["total_spent"], stats["lifetime_value"]) == (
        1,
        "42.50",
        "42.50",
    )
    inbox = await db.fetch(
        "SELECT message_id, message_type, outcome FROM inbox_messages WHERE tenant_id = $1 "
        "ORDER BY received_at",
        tenant,
    )
    assert [tuple(r) for r in inbox] == [
        (created["id"], "order.created", "recorded"),
        (paid["id"], "order.paid", "recorded"),
    ]
    events = await outbox_rows(db, tenant, "customer.order_recorded")
    assert [(e["data"]["order"]["status"], e["trace_id"]) for e in events] == [
        ("PLACED", "trace-order-1"),
        ("PAID", events[1]["trace_id"]),
    ]
    assert await broker.dead_letters() == []


async def test_duplicate_message_id_is_processed_once(
    broker: Broker, client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    bob = await create_customer(client, admin, first_name="Bob", email="bob@example.com")
    ref = {"customer_id": bob["id"]}
    first = order_event(tenant, "order.created", ref, {"order_id": "D-1", "total": "10.00"})
    # the same message id again, even with other data, is a redelivery: ignored
    again = {**first, "data": {"customer": ref, "order": {"order_id": "D-1", "total": "99.00"}}}
    barrier = order_event(tenant, "order.created", ref, {"order_id": "D-2", "total": "1.00"})
    for event in (first, again, barrier):
        await broker.publish(event, "v1.order.created")
    await eventually(lambda: _order(db, tenant, "D-2"))
    row = await _order(db, tenant, "D-1")
    assert row is not None
    assert row["total"] == 10
    # no placed_at in the order: the event's time
    assert row["placed_at"] == datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    count = await db.fetchval(
        "SELECT count(*) FROM inbox_messages WHERE tenant_id = $1 AND message_id = $2",
        tenant,
        first["id"],
    )
    assert count == 1
    assert len(await outbox_rows(db, tenant, "customer.order_recorded")) == 2
    assert await broker.dead_letters() == []


async def test_unknown_customer_is_retried_then_dead_lettered(
    broker: Broker, tenant: str, db: asyncpg.Pool
) -> None:
    event = order_event(
        tenant, "order.created", {"email": "nobody@example.com"}, {"order_id": "X-1", "total": 5}
    )
    await broker.publish(event, "v1.order.created")
    dead = await eventually(broker.dead_letters)
    assert len(dead) == 1
    message = dead[0]
    assert json.loads(message.body) == event
    assert message.message_id == event["id"]
    headers = message.headers or {}
    assert headers["x-patron-attempt"] == 3
    assert "NotFound" in str(headers["x-patron-error"])
    assert headers["x-patron-routing-key"] == "v1.order.created"
    assert await _order(db, tenant, "X-1") is None
    assert (
        await db.fetchval("SELECT count(*) FROM inbox_messages WHERE tenant_id = $1", tenant) == 0
    )


# up to 20 attempts 300 ms apart: the customer appears well within the retries
@pytest.mark.parametrize("broker", [{"max_attempts": 20, "retry_delay_ms": 300}], indirect=True)
async def test_customer_created_while_retrying_gets_the_order(
    broker: Broker,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    event = order_event(
        tenant, "order.created", {"user_id": "u-late"}, {"order_id": "L-1", "total": "3.00"}
    )
    await broker.publish(event, "v1.order.created")

    # the first attempt fails: the message waits in the retry queue (300 ms) ...
    async def waiting_for_retry() -> bool:
        retry = await broker.channel.declare_queue(broker.topology.retry_queue, passive=True)
        return retry.declaration_result.message_count == 1

    await eventually(waiting_for_retry)
    # ... the customer appears, and a later attempt records the order
    assert await _order(db, tenant, "L-1") is None
    late = await create_customer(client, admin, first_name="Late", user_id="u-late")
    row = await eventually(lambda: _order(db, tenant, "L-1"))
    assert str(row["customer_id"]) == late["id"]
    assert await broker.dead_letters() == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b'{"specversion": "1.0"}',
        json.dumps(
            {
                "specversion": "1.0",
                "id": "m-1",
                "source": "/orders",
                "type": "order.shipped",
                "tenantid": "t-x",
                "data": {"customer": {"email": "a@b.c"}, "order": {"order_id": "1"}},
            }
        ).encode(),
        json.dumps(
            {
                "specversion": "1.0",
                "id": "m-2",
                "source": "/orders",
                "type": "order.created",
                "tenantid": "bad tenant!",
                "data": {"customer": {"email": "a@b.c"}, "order": {"order_id": "1", "total": 1}},
            }
        ).encode(),
    ],
    ids=["not-json", "no-fields", "unknown-type", "bad-tenant"],
)
async def test_malformed_message_is_dead_lettered_without_retries(
    broker: Broker, body: bytes
) -> None:
    await broker.publish(body, "v1.order.created")
    dead = await eventually(broker.dead_letters)
    assert [m.body for m in dead] == [body]
    headers = dead[0].headers or {}
    assert headers["x-patron-attempt"] == 1
    assert str(headers["x-patron-error"]).startswith("malformed:")


async def test_invalid_order_data_is_dead_lettered_and_nothing_written(
    broker: Broker, client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    eve = await create_customer(client, admin, first_name="Eve")
    event = order_event(
        tenant,
        "order.created",
        {"customer_id": eve["id"]},
        {"order_id": "J-1", "total": "10.5", "currency": "JPY"},
    )
    await broker.publish(event, "v1.order.created")
    dead = await eventually(broker.dead_letters)
    assert "total has more decimals than JPY" in str((dead[0].headers or {})["x-patron-error"])
    assert await _order(db, tenant, "J-1") is None
    assert await outbox_rows(db, tenant, "customer.order_recorded") == []


async def test_order_event_with_a_card_number_is_dead_lettered_naming_only_the_field(
    broker: Broker, client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    eve = await create_customer(client, admin, first_name="Eve")
    order = {"order_id": "C-1", "total": "10.00", "metadata": {"paid_with": "4111 1111 1111 1111"}}
    await broker.publish(
        order_event(tenant, "order.created", {"customer_id": eve["id"]}, order), "v1.order.created"
    )
    dead = await eventually(broker.dead_letters)
    error = str((dead[0].headers or {})["x-patron-error"])
    assert error.startswith("malformed:")
    assert "data.order.metadata" in error
    assert "card number" in error
    assert "4111" not in error
    assert await _order(db, tenant, "C-1") is None
    assert await outbox_rows(db, tenant, "customer.order_recorded") == []


async def test_identity_resolution_by_phone_and_appointments(
    broker: Broker,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    cy = await create_customer(client, admin, first_name="Cy", phone="+14155550123")
    booked = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/scheduling",
        "type": "appointment.booked",
        "tenantid": tenant,
        "data": {
            # national format, normalised with DEFAULT_PHONE_REGION (US)
            "customer": {"phone": "(415) 555-0123"},
            "appointment": {
                "appointment_id": "AP-1",
                "service": "Massage",
                "starts_at": "2026-12-01T15:00:00Z",
            },
        },
    }
    await broker.publish(booked, "v1.appointment.booked")

    async def appointment() -> asyncpg.Record | None:
        row: asyncpg.Record | None = await db.fetchrow(
            "SELECT customer_id, status FROM customer_appointments "
            "WHERE tenant_id = $1 AND appointment_id = 'AP-1'",
            tenant,
        )
        return row

    row = await eventually(appointment)
    assert (str(row["customer_id"]), row["status"]) == (cy["id"], "BOOKED")
    stats = (await client.get(f"/api/v1/customers/{cy['id']}/stats", headers=admin)).json()
    assert (stats["total_appointments"], stats["last_appointment_date"]) == (1, "2026-12-01")
    events = await outbox_rows(db, tenant, "customer.appointment_recorded")
    assert [e["subject"] for e in events] == [cy["id"]]


def test_no_consumer_without_rabbitmq_url(app_ctx: AppContext) -> None:
    ctx = AppContext(**{**app_ctx.__dict__, "settings": make_settings(rabbitmq_url=None)})
    assert build_consumer_services(ctx) == []
    with_url = AppContext(
        **{**app_ctx.__dict__, "settings": make_settings(rabbitmq_url="amqp://guest:guest@h/")}
    )
    [service] = build_consumer_services(with_url)
    assert isinstance(service, OrderEventConsumer)
    assert service.topology.routing_keys == ("v1.order.*", "v1.appointment.*")
    assert service.topology.queue == "patron.orders-in"


async def test_message_redelivered_too_often_is_dead_lettered_unprocessed(
    broker: Broker, client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    # A message that killed the worker again and again: RabbitMQ's delivery count is high.
    # Publish one that already carries it, as the quorum queue would after 20 redeliveries.
    dee = await create_customer(client, admin, first_name="Dee")
    event = order_event(
        tenant, "order.created", {"customer_id": dee["id"]}, {"order_id": "K-1", "total": 1}
    )
    exchange = await broker.channel.get_exchange(broker.topology.exchange)
    await exchange.publish(
        aio_pika.Message(json.dumps(event).encode(), headers={"x-delivery-count": 20}),
        routing_key="v1.order.created",
    )
    dead = await eventually(broker.dead_letters)
    assert str((dead[0].headers or {})["x-patron-error"]).startswith("redelivered 20 times")
    assert await _order(db, tenant, "K-1") is None


async def test_same_message_processed_twice_at_once_records_once(
    app_ctx: AppContext,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
) -> None:
    # two workers holding the same message (a redelivery racing the original)
    fay = await create_customer(client, admin, first_name="Fay")
    event = order_event(
        tenant, "order.created", {"customer_id": fay["id"]}, {"order_id": "C-1", "total": "2.00"}
    )
    body = json.dumps(event).encode()
    processor = InboxProcessor(app_ctx)
    outcomes = await asyncio.gather(*(processor.process(body) for _ in range(4)))
    assert sorted(o.result for o in outcomes) == ["duplicate", "duplicate", "duplicate", "recorded"]
    assert len(await outbox_rows(db, tenant, "customer.order_recorded")) == 1
    assert (
        await db.fetchval("SELECT count(*) FROM inbox_messages WHERE tenant_id = $1", tenant) == 1
    )

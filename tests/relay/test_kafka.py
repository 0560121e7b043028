"""Kafka transport: against aiokafka's producer interface (a fake producer: Kafka is an
external service this machine does not run), and against a real broker when
``KAFKA_BOOTSTRAP_SERVERS`` is set."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaConnectionError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
)

from patron.config import Settings
from patron.db.engine import create_system_engine
from patron.kit.jsonutil import loads
from patron.relay.kafka import KafkaTransport, parse_topics, topic_for
from patron.relay.rabbitmq import RabbitMQTransport
from patron.relay.service import OutboxRelay
from patron.relay.store import PendingEvent
from patron.relay.transport import BrokerUnavailable
from tests.conftest import create_customer, outbox_rows
from tests.relay.conftest import FAST, Consumer, running, wait_until

DEFAULT_TOPICS = parse_topics(Settings.model_fields["kafka_topics"].default)


class FakeProducer:
    """Stands in for ``aiokafka.AIOKafkaProducer``: records sends; ``fail`` maps an event
    type to the exception its delivery future fails with."""

    def __init__(self, bootstrap_servers: str = "") -> None:
        self.bootstrap_servers = bootstrap_servers
        self.sent: list[dict[str, Any]] = []
        self.fail: dict[str, BaseException] = {}
        self.start_error: BaseException | None = None
        self.started = False
        self.stopped = False

    async def start(self) -> None:
        if self.start_error is not None:
            raise self.start_error
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        record = {"topic": topic, "value": value, "key": key, "headers": dict(headers or [])}
        event_type = record["headers"]["event"].decode()
        if event_type in self.fail:
            future.set_exception(self.fail[event_type])
        else:
            self.sent.append(record)
            future.set_result(object())
        return future


def _event(type_: str, subject: str | None = "c-1", trace: str | None = "tr-1") -> PendingEvent:
    return PendingEvent(
        id=uuid.uuid4(),
        tenant_id="t-1",
        type=type_,
        source="/patron/customers",
        subject=subject,
        time=datetime(2026, 11, 22, 5, 0, tzinfo=UTC),
        data=orjson.Fragment(orjson.dumps({"customer_id": subject})),
        trace_id=trace,
        attempts=0,
        next_attempt_at=None,
    )


def test_topics_per_type_family_and_fallback() -> None:
    assert topic_for(DEFAULT_TOPICS, "customer.created") == "customer.created"
    assert topic_for(DEFAULT_TOPICS, "customer.updated") == "customer.updated"
    assert topic_for(DEFAULT_TOPICS, "customer.blocked") == "customer.updated"
    assert topic_for(DEFAULT_TOPICS, "customer.deleted") == "customer.deleted"
    assert topic_for(DEFAULT_TOPICS, "customer.erased") == "customer.deleted"
    assert topic_for(DEFAULT_TOPICS, "webhook_endpoint.disabled") == "patron.webhooks"
    assert topic_for(parse_topics("customer.created=new"), "customer.blocked") is None
    with pytest.raises(ValueError, match="type=topic"):
        parse_topics("customer.created")


async def test_records_carry_key_headers_and_cloudevent() -> None:
    producer = FakeProducer()
    transport = KafkaTransport("k:9092", DEFAULT_TOPICS, producer_factory=lambda _: producer)
    await transport.connect()
    events = [_event("customer.created"), _event("customer.blocked", trace=None)]
    result = await transport.publish(events)
    assert result.confirmed == [e.id for e in events]
    assert result.rejected == {}
    first, second = producer.sent
    assert first["topic"] == "customer.created"
    assert first["key"] == b"c-1"
    assert first["headers"] == {
        "event": b"customer.created",
        "content-type": b"application/cloudevents+json",
        "trace_id": b"tr-1",
    }
    body = loads(first["value"])
    assert body["id"] == str(events[0].id)
    assert body["specversion"] == "1.0"
    assert body["subject"] == "c-1"
    assert second["topic"] == "customer.updated"
    assert second["headers"]["event"] == b"customer.blocked"
    assert "trace_id" not in second["headers"]
    await transport.close()
    assert producer.stopped


async def test_unmapped_types_are_done_without_a_record() -> None:
    producer = FakeProducer()
    transport = KafkaTransport(
        "k:9092", parse_topics("customer.created=c"), producer_factory=lambda _: producer
    )
    await transport.connect()
    event = _event("customer.tagged")
    result = await transport.publish([event])
    assert result.confirmed == [event.id]
    assert producer.sent == []


async def test_bad_record_is_rejected_broker_trouble_is_unavailable() -> None:
    producer = FakeProducer()
    transport = KafkaTransport("k:9092", DEFAULT_TOPICS, producer_factory=lambda _: producer)
    await transport.connect()
    producer.fail["customer.updated"] = MessageSizeTooLargeError()
    good, bad = _event("customer.created"), _event("customer.updated")
    result = await transport.publish([good, bad])
    assert result.confirmed == [good.id]
    assert list(result.rejected) == [bad.id]
    assert "MessageSizeTooLargeError" in result.rejected[bad.id]

    producer.fail["customer.updated"] = NotLeaderForPartitionError()  # retriable
    with pytest.raises(BrokerUnavailable):
        await transport.publish([bad])
    producer.fail["customer.updated"] = KafkaConnectionError()
    with pytest.raises(BrokerUnavailable):
        await transport.publish([bad])


async def test_connect_failure_is_unavailable() -> None:
    producer = FakeProducer()
    producer.start_error = KafkaConnectionError("no broker")
    transport = KafkaTransport("k:9092", DEFAULT_TOPICS, producer_factory=lambda _: producer)
    with pytest.raises(BrokerUnavailable):
        await transport.connect()
    assert not transport.connected
    with pytest.raises(BrokerUnavailable):
        await transport.publish([_event("customer.created")])


async def test_every_configured_transport_gets_every_event(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    consumer: Consumer,
    settings: Settings,
    database_url: str,
    rabbitmq_url: str,
    exchange: str,
) -> None:
    """RabbitMQ and Kafka both configured: an event is published (``published_at``) only
    when both confirmed it; one transport being behind does not hold the other back."""
    producer = FakeProducer()
    required = ["rabbitmq", "kafka"]
    engines = [create_system_engine(settings, database_url, pool_size=1) for _ in range(2)]
    rabbit = OutboxRelay(
        engines[0], RabbitMQTransport(rabbitmq_url, exchange), FAST, required=required
    )
    kafka = OutboxRelay(
        engines[1],
        KafkaTransport("k:9092", DEFAULT_TOPICS, producer_factory=lambda _: producer),
        FAST,
        required=required,
    )
    try:
        customer = await create_customer(client, admin, first_name="Both")
        async with running(rabbit):

            async def rabbit_done() -> bool:
                rows = await outbox_rows(db, tenant)
                return rows[0]["published_to"] == ["rabbitmq"]

            await wait_until(rabbit_done, what="RabbitMQ's confirm")
            [row] = await outbox_rows(db, tenant)
            assert row["published_at"] is None  # Kafka has not got it yet
        async with running(kafka):

            async def both_done() -> bool:
                return (await outbox_rows(db, tenant))[0]["published_at"] is not None

            await wait_until(both_done, what="Kafka's confirm")
        [row] = await outbox_rows(db, tenant)
        assert sorted(row["published_to"]) == ["kafka", "rabbitmq"]
        mine = [r for r in producer.sent if loads(r["value"])["tenantid"] == tenant]
        assert [(r["topic"], r["key"]) for r in mine] == [
            ("customer.created", customer["id"].encode())
        ]
        await consumer.barrier()
        assert [m.body["id"] for m in consumer.of_tenant(tenant)] == [str(row["id"])]
    finally:
        for engine in engines:
            await engine.dispose()


KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")


@pytest.mark.skipif(
    not KAFKA, reason="no Kafka broker on this machine; set KAFKA_BOOTSTRAP_SERVERS"
)
async def test_real_kafka_receives_the_event() -> None:
    assert KAFKA is not None
    topic = f"patron-test-{uuid.uuid4().hex[:8]}"
    transport = KafkaTransport(KAFKA, {"*": topic})
    await transport.connect()
    event = _event("customer.created", subject=str(uuid.uuid4()))
    try:
        result = await transport.publish([event])
        assert result.confirmed == [event.id]
    finally:
        await transport.close()
    kafka_consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest")
    await kafka_consumer.start()
    try:
        message = await asyncio.wait_for(kafka_consumer.getone(), 30)
    finally:
        await kafka_consumer.stop()
    assert message.key == event.subject.encode()  # type: ignore[union-attr]
    assert dict(message.headers)["event"] == b"customer.created"
    assert loads(message.value)["id"] == str(event.id)

"""The order and appointment event consumer (``patron worker``; docs/events-in.md).

Topology (all durable, declared on start; names from settings):

- topic exchange ``ORDERS_CONSUMER_EXCHANGE``, where the orders and scheduling services
  publish (routing keys like ``v1.order.paid``);
- quorum queue ``ORDERS_CONSUMER_QUEUE`` bound with each of
  ``ORDERS_CONSUMER_ROUTING_KEYS``; its ``x-dead-letter-exchange`` is ``<queue>.dlx``;
- ``<queue>.retry``: a failed message waits there ``ORDERS_CONSUMER_RETRY_DELAY_MS``
  (per-message ``expiration``), then RabbitMQ dead-letters it back to ``<queue>`` through
  the default exchange (``x-dead-letter-routing-key``);
- fanout exchange ``<queue>.dlx`` and queue ``<queue>.dlq``: messages given up on.

Each message is processed in one database transaction (:class:`InboxProcessor`) and
acknowledged only after that commits, so a crash in between redelivers it and the inbox
recognises it. A failure that retrying can fix (unknown customer, database trouble) is
republished to the retry queue with header ``x-patron-attempt`` + 1, with publisher
confirms, before the original is acknowledged; after ``ORDERS_CONSUMER_MAX_ATTEMPTS``
attempts, or at once for a malformed message, it is published to ``<queue>.dlx`` with
``x-patron-error`` saying why. A message RabbitMQ redelivered :data:`REDELIVERY_LIMIT`
times (the quorum queue's ``x-delivery-count``: the worker died or disconnected holding
it) is dead-lettered without another try, so a message that kills the worker cannot
loop. That limit is separate and generous because a graceful stop or a lost connection
also returns the prefetched messages the worker never looked at.

Messages are processed one at a time per consumer, in queue order, so one producer's
events for a customer apply in the order published (when no retry intervenes).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    DeliveryMode,
    ExchangeType,
)

from patron.config import Settings
from patron.context import AppContext
from patron.kit import amqp
from patron.orders.inbox import InboxProcessor, MalformedMessage
from patron.runtime.supervisor import BackgroundService

log = structlog.get_logger("patron.orders.consumer")

ATTEMPT_HEADER = "x-patron-attempt"
# Broker redeliveries (x-delivery-count) after which a message is taken for poison.
REDELIVERY_LIMIT = 20
ERROR_HEADER = "x-patron-error"
ROUTING_KEY_HEADER = "x-patron-routing-key"
# Broker headers not carried over to a republished copy (they describe the old delivery).
_DROPPED_HEADERS = frozenset(
    {
        "x-death",
        "x-delivery-count",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
    }
)


@dataclass(frozen=True)
class ConsumerTopology:
    """Names and limits of the consumer's exchanges and queues."""

    exchange: str
    queue: str
    routing_keys: tuple[str, ...]
    prefetch: int = 32
    max_attempts: int = 5
    retry_delay_ms: int = 10_000

    @property
    def retry_queue(self) -> str:
        """Where failed messages wait before their next attempt."""
        return f"{self.queue}.retry"

    @property
    def dead_letter_exchange(self) -> str:
        """Fanout exchange of messages given up on."""
        return f"{self.queue}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        """The queue bound to :attr:`dead_letter_exchange`."""
        return f"{self.queue}.dlq"

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsumerTopology:
        """From ``ORDERS_CONSUMER_*``; routing keys comma-separated."""
        keys = tuple(
            k.strip() for k in settings.orders_consumer_routing_keys.split(",") if k.strip()
        )
        return cls(
            exchange=settings.orders_consumer_exchange,
            queue=settings.orders_consumer_queue,
            routing_keys=keys,
            prefetch=settings.orders_consumer_prefetch,
            max_attempts=settings.orders_consumer_max_attempts,
            retry_delay_ms=settings.orders_consumer_retry_delay_ms,
        )


async def declare_topology(channel: AbstractChannel, topology: ConsumerTopology) -> AbstractQueue:
    """Declare (idempotently) the exchanges, queues and bindings; returns the main queue."""
    exchange = await channel.declare_exchange(topology.exchange, ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(
        topology.dead_letter_exchange, ExchangeType.FANOUT, durable=True
    )
    dlq = await channel.declare_queue(
        topology.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dlq.bind(dlx, routing_key="")
    queue = await channel.declare_queue(
        topology.queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": topology.dead_letter_exchange,
        },
    )
    for key in topology.routing_keys:
        await queue.bind(exchange, routing_key=key)
    await channel.declare_queue(
        topology.retry_queue,
        durable=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": topology.queue},
    )
    return queue


def attempt_of(message: AbstractIncomingMessage) -> int:
    """1-based attempt number, from ``x-patron-attempt`` (set on retry copies)."""
    return max(1, _int((message.headers or {}).get(ATTEMPT_HEADER), 1))


def redeliveries_of(message: AbstractIncomingMessage) -> int:
    """How often RabbitMQ redelivered this copy (quorum queue ``x-delivery-count``)."""
    return _int((message.headers or {}).get("x-delivery-count"), 0)


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


class OrderEventConsumer:
    """A :class:`~patron.runtime.BackgroundService` consuming order and appointment events."""

    name = "orders-consumer"

    def __init__(self, url: str, topology: ConsumerTopology, processor: InboxProcessor) -> None:
        self.url = url
        self.topology = topology
        self.processor = processor
        # Set once the queue is declared and consumption has started (for tests and probes).
        self.consuming = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; raises on broker trouble (the supervisor restarts)."""
        connection = await amqp.connect(self.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=self.topology.prefetch)
            queue = await declare_topology(channel, self.topology)
            async with queue.iterator() as messages:
                self.consuming.set()
                stopping = asyncio.ensure_future(stop.wait())
                try:
                    while not stop.is_set():
                        getting = asyncio.ensure_future(messages.__anext__())
                        await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                        if not getting.done():
                            getting.cancel()
                            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                                await getting
                            break
                        await self.handle(channel, getting.result())
                finally:
                    stopping.cancel()
                    self.consuming.clear()

    async def handle(self, channel: AbstractChannel, message: AbstractIncomingMessage) -> None:
        """Process one message, then ack, retry or dead-letter it (never leaves it pending
        unless publishing the retry or dead letter itself fails, which raises)."""
        attempt = attempt_of(message)
        limit = self.topology.max_attempts
        redelivered = redeliveries_of(message)
        if redelivered >= REDELIVERY_LIMIT:
            reason = f"redelivered {redelivered} times: the worker died or lost it each time"
            await self._dead_letter(channel, message, attempt, reason)
            return
        try:
            outcome = await self.processor.process(message.body)
        except MalformedMessage as exc:
            await self._dead_letter(channel, message, attempt, f"malformed: {exc}")
            return
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if attempt >= limit:
                await self._dead_letter(channel, message, attempt, reason)
            else:
                await self._retry(channel, message, attempt, reason)
            return
        await message.ack()
        log.info(
            "event consumed",
            message_id=message.message_id,
            outcome=outcome.result,
            customer_id=str(outcome.customer_id) if outcome.customer_id else None,
        )

    def _copy(self, message: AbstractIncomingMessage, headers: dict[str, Any]) -> aio_pika.Message:
        kept = {k: v for k, v in (message.headers or {}).items() if k not in _DROPPED_HEADERS}
        kept.setdefault(ROUTING_KEY_HEADER, message.routing_key or "")
        return aio_pika.Message(
            message.body,
            headers={**kept, **headers},
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            type=message.type,
            app_id=message.app_id,
            timestamp=message.timestamp,
            delivery_mode=DeliveryMode.PERSISTENT,
        )

    async def _retry(
        self, channel: AbstractChannel, message: AbstractIncomingMessage, attempt: int, reason: str
    ) -> None:
        copy = self._copy(message, {ATTEMPT_HEADER: attempt + 1, ERROR_HEADER: reason[:1000]})
        copy.expiration = self.topology.retry_delay_ms / 1000
        await channel.default_exchange.publish(copy, routing_key=self.topology.retry_queue)
        await message.ack()
        log.warning(
            "event failed, will retry",
            message_id=message.message_id,
            attempt=attempt,
            max_attempts=self.topology.max_attempts,
            error=reason,
        )

    async def _dead_letter(
        self, channel: AbstractChannel, message: AbstractIncomingMessage, attempt: int, reason: str
    ) -> None:
        copy = self._copy(
            message,
            {
                ATTEMPT_HEADER: attempt,
                ERROR_HEADER: reason[:1000],
                "x-patron-dead-lettered-at": datetime.now(UTC).isoformat(),
            },
        )
        dlx = await channel.get_exchange(self.topology.dead_letter_exchange, ensure=False)
        await dlx.publish(copy, routing_key=message.routing_key or "")
        await message.ack()
        log.error(
            "event dead-lettered",
            message_id=message.message_id,
            attempt=attempt,
            queue=self.topology.dead_letter_queue,
            error=reason,
        )


def build_consumer_services(ctx: AppContext) -> list[BackgroundService]:
    """The consumer, when ``RABBITMQ_URL`` is set; an empty list otherwise."""
    url = ctx.settings.rabbitmq_url
    if not url:
        return []
    topology = ConsumerTopology.from_settings(ctx.settings)
    return [OrderEventConsumer(url, topology, InboxProcessor(ctx))]

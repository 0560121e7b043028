"""RabbitMQ transport (aio-pika): topic exchange, persistent messages, publisher confirms.

Each event is one message on the durable topic exchange ``RABBITMQ_EXCHANGE`` with routing
key ``v1.<type>`` (``v1.customer.created``), ``message_id`` = event id, ``type`` = event
type, ``content_type`` ``application/cloudevents+json`` (the body is the structured-mode
CloudEvents envelope, https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/amqp-protocol-binding.md),
delivery mode 2 (persistent) and header ``trace_id``. Messages are published with
``mandatory=False``: a message no queue is bound for is dropped by the broker, as topic
exchanges do; binding queues is the consumers' business.

A batch is written in order on one channel in confirm mode (through aio-pika's
underlying aiormq channel, with the message properties built directly) and its confirms
are awaited together (https://www.rabbitmq.com/docs/confirms#publisher-confirms): one round trip per
batch rather than per message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, cast

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from patron.kit import amqp
from patron.relay.store import PendingEvent
from patron.relay.transport import CLOUDEVENTS_JSON, BatchResult, BrokerUnavailable, encode

CONNECT_TIMEOUT_SECONDS = 10.0


def routing_key(event_type: str) -> str:
    """``v1.<type>``: the routing key of an event type (ARCHITECTURE.md §5)."""
    return f"v1.{event_type}"


def properties(event: PendingEvent) -> aiormq.spec.Basic.Properties:
    """The AMQP properties of an outbox event's message (see the module docstring)."""
    headers: dict[str, aio_pika.abc.FieldValue] = {}
    if event.trace_id is not None:
        headers["trace_id"] = event.trace_id
    return aiormq.spec.Basic.Properties(
        content_type=CLOUDEVENTS_JSON,
        delivery_mode=int(aio_pika.DeliveryMode.PERSISTENT),
        message_id=str(event.id),
        message_type=event.type,
        timestamp=event.time,
        app_id="patron",
        headers=headers,
    )


class RabbitMQTransport:
    """Publishes batches to a topic exchange over one confirm-mode channel."""

    name = "rabbitmq"

    def __init__(self, url: str, exchange: str, *, confirm_timeout: float = 30.0) -> None:
        self.url = url
        self.exchange_name = exchange
        self.confirm_timeout = confirm_timeout
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def connect(self) -> None:
        """Connect, open a confirm-mode channel and declare the exchange (durable topic).

        Raises :class:`BrokerUnavailable` when the broker cannot be reached.
        """
        await self.close()
        try:
            self._connection = await amqp.connect(self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
            self._channel = await self._connection.channel(publisher_confirms=True)
            self._exchange = await self._channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as exc:
            await self.close()
            raise BrokerUnavailable(f"RabbitMQ: {type(exc).__name__}: {exc}") from exc

    async def send(self, events: list[PendingEvent]) -> asyncio.Future[BatchResult]:
        """Queue ``events``' messages in order; the future gives confirmed and nacked ids.

        Raises :class:`BrokerUnavailable` when not connected; the future raises it when
        the connection fails during the batch or the confirms take longer than
        ``confirm_timeout`` seconds.
        """
        exchange, amqp_channel = self._exchange, self._channel
        if exchange is None or amqp_channel is None or not self.connected:
            raise BrokerUnavailable("RabbitMQ: not connected")
        # aio-pika's channel is a thin layer over aiormq's; publishing on the latter with
        # ready-made properties, without waiting for each frame to drain, saves work per
        # message. Order is kept: each publish task, once it runs, queues its frames under
        # the channel's lock without suspending, and tasks run in creation order, so a
        # later send's messages follow these even while these confirms are pending.
        try:
            channel = cast(aiormq.Channel, await amqp_channel.get_underlay_channel())
        except (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
            raise BrokerUnavailable(f"RabbitMQ: {type(exc).__name__}: {exc}") from exc
        publishes = [
            asyncio.ensure_future(
                channel.basic_publish(
                    encode(event),
                    exchange=exchange.name,
                    routing_key=routing_key(event.type),
                    properties=properties(event),
                    mandatory=False,
                    wait=False,
                )
            )
            for event in events
        ]
        return asyncio.ensure_future(self._confirms(events, publishes))

    async def _confirms(
        self, events: list[PendingEvent], publishes: Sequence[asyncio.Future[Any]]
    ) -> BatchResult:
        try:
            # a timeout scope, not wait_for: cancelling this task (an abandoned batch)
            # then cancels the gather and consumes its outcome
            async with asyncio.timeout(self.confirm_timeout):
                outcomes = await asyncio.gather(*publishes, return_exceptions=True)
        except TimeoutError as exc:
            raise BrokerUnavailable("RabbitMQ: publisher confirms timed out") from exc
        result = BatchResult()
        for event, outcome in zip(events, outcomes, strict=True):
            if isinstance(outcome, aiormq.exceptions.DeliveryError):
                result.rejected[event.id] = "RabbitMQ rejected the message (basic.nack)"
            elif isinstance(outcome, BaseException):
                raise BrokerUnavailable(f"RabbitMQ: {type(outcome).__name__}: {outcome}")
            else:
                result.confirmed.append(event.id)
        return result

    async def publish(self, events: list[PendingEvent]) -> BatchResult:
        """:meth:`send` ``events`` and wait for their confirms (raises as :meth:`send`)."""
        return await (await self.send(events))

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        self._channel = None
        self._exchange = None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2.0)
